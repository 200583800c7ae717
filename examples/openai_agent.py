#!/usr/bin/env python3
"""A small agent on the official `openai` SDK: chat completions with a tool loop.

The SDK reads OPENAI_BASE_URL itself, so `rewind record -- python openai_agent.py`
records it with no code change. Usage: python openai_agent.py ["question"]
"""

from __future__ import annotations

import json
import os
import sys

from openai import OpenAI

WEATHER = {"paris": "18°C, light rain", "tokyo": "24°C, sunny", "lima": "16°C, overcast"}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "the city"}},
                "required": ["city"],
            },
        },
    }
]


def get_weather(city: str) -> str:
    """A local, deterministic tool: finds a known city named in its argument."""
    for name, weather in WEATHER.items():
        if name in city.lower():
            return f"{name.title()}: {weather}"
    return f"No weather data for {city!r}."


def main() -> int:
    question = sys.argv[1] if len(sys.argv) > 1 else "What is the weather in Paris right now?"
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "sk-demo-rewind")
    messages: list[dict] = [{"role": "user", "content": question}]
    for _ in range(4):
        response = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=TOOLS
        )
        message = response.choices[0].message
        if not message.tool_calls:
            print(message.content)
            return 0
        messages.append(
            {
                "role": "assistant",
                "content": message.content,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": call.function.arguments,
                        },
                    }
                    for call in message.tool_calls
                ],
            }
        )
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments or "{}")
            result = get_weather(str(arguments.get("city", "")))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    print("gave up: the model kept calling tools", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""A small agent on the official `anthropic` SDK: messages with a tool loop, streamed.

The SDK reads ANTHROPIC_BASE_URL itself, so `rewind record -- python anthropic_agent.py`
records it with no code change. Usage: python anthropic_agent.py ["question"]
"""

from __future__ import annotations

import os
import sys
from typing import Any

from anthropic import Anthropic

WEATHER = {"paris": "18°C, light rain", "tokyo": "24°C, sunny", "lima": "16°C, overcast"}

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}},
            "required": ["city"],
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
    question = sys.argv[1] if len(sys.argv) > 1 else "What is the weather in Tokyo right now?"
    client = Anthropic(api_key=os.environ.get("ANTHROPIC_API_KEY") or "sk-ant-demo-rewind")
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(4):
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=1024, messages=messages, tools=TOOLS
        ) as stream:
            message = stream.get_final_message()
        calls = [block for block in message.content if block.type == "tool_use"]
        if not calls:
            print("".join(block.text for block in message.content if block.type == "text"))
            return 0
        messages.append({"role": "assistant", "content": message.content})
        results = [
            {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": get_weather(str(call.input.get("city", ""))),
            }
            for call in calls
        ]
        messages.append({"role": "user", "content": results})
    print("gave up: the model kept calling tools", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""A small agent on the official `google-genai` SDK: function calling in a loop.

The SDK reads GOOGLE_GEMINI_BASE_URL itself, so `rewind record -- python gemini_agent.py`
records it with no code change. Usage: python gemini_agent.py ["question"]
"""

from __future__ import annotations

import os
import sys

from google import genai
from google.genai import types

WEATHER = {"paris": "18°C, light rain", "tokyo": "24°C, sunny", "lima": "16°C, overcast"}

WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather in a city.",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string", "description": "the city"}},
                "required": ["city"],
            },
        )
    ]
)


def get_weather(city: str) -> str:
    """A local, deterministic tool: finds a known city named in its argument."""
    for name, weather in WEATHER.items():
        if name in city.lower():
            return f"{name.title()}: {weather}"
    return f"No weather data for {city!r}."


def main() -> int:
    question = sys.argv[1] if len(sys.argv) > 1 else "What is the weather in Lima right now?"
    api_key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or "demo-key"
    client = genai.Client(api_key=api_key)
    config = types.GenerateContentConfig(tools=[WEATHER_TOOL])
    contents: list[types.Content] = [
        types.Content(role="user", parts=[types.Part.from_text(text=question)])
    ]
    for _ in range(4):
        response = client.models.generate_content(
            model="gemini-2.5-flash", contents=contents, config=config
        )
        calls = response.function_calls or []
        if not calls:
            print(response.text)
            return 0
        contents.append(response.candidates[0].content)
        contents.append(
            types.Content(
                role="user",
                parts=[
                    types.Part.from_function_response(
                        name=call.name,
                        response={"result": get_weather(str((call.args or {}).get("city", "")))},
                    )
                    for call in calls
                ],
            )
        )
    print("gave up: the model kept calling tools", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

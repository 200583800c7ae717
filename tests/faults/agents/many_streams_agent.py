"""N streaming chat calls at once (AsyncOpenAI + asyncio.gather); prints each answer, in call order.

Usage: python many_streams_agent.py N
"""

from __future__ import annotations

import asyncio
import sys

from openai import AsyncOpenAI


async def one(client: AsyncOpenAI, i: int) -> str:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": f"concurrent question number {i}"}])
    parts = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


async def main(n: int) -> None:
    async with AsyncOpenAI(api_key="sk-test-SECRET-0123456789", max_retries=0, timeout=60) as client:
        answers = await asyncio.gather(*(one(client, i) for i in range(n)))
    for i, answer in enumerate(answers):
        print(i, answer.replace("\n", " | "))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

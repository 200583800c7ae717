"""A test agent on the official Python SDKs; prints what it got, deterministically.

Usage: python sdk_agent.py openai|anthropic|gemini|errors [question]
It reads only the standard environment variables (base URLs, proxies, CA
bundles), as any user's agent does: no rewind code here.
"""

from __future__ import annotations

import asyncio
import json
import sys

KEY = "sk-test-SECRET-never-stored-0123456789"
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look a city up.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def openai_agent(question: str) -> None:
    from openai import AsyncOpenAI, OpenAI

    client = OpenAI(api_key=KEY, max_retries=0)
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    print("plain:", r.choices[0].message.content, r.usage.prompt_tokens, r.usage.completion_tokens)
    stream = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "stream " + question}])
    parts, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    print("stream:", "".join(parts), usage.total_tokens if usage else None)
    messages = [{"role": "user", "content": "Find " + question}]
    for _ in range(3):  # a tool loop
        r = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[TOOL])
        msg = r.choices[0].message
        if not msg.tool_calls:
            print("tools:", msg.content)
            break
        messages.append(msg.model_dump(exclude_none=True))
        for call in msg.tool_calls:
            args = json.loads(call.function.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": f"result for {args}"})
    resp = client.responses.create(model="gpt-4o-mini", input="responses " + question)
    print("responses:", resp.output_text)
    emb = client.embeddings.create(model="text-embedding-3-small", input="embed " + question)
    print("embeddings:", len(emb.data[0].embedding), round(sum(emb.data[0].embedding), 6))

    async def many() -> list[str]:
        aclient = AsyncOpenAI(api_key=KEY, max_retries=0)
        rs = await asyncio.gather(*[
            aclient.chat.completions.create(model="gpt-4o-mini",
                                            messages=[{"role": "user", "content": f"parallel {i}"}])
            for i in range(12)])
        return [x.choices[0].message.content for x in rs]

    print("async:", " | ".join(asyncio.run(many())))


def anthropic_agent(question: str) -> None:
    import anthropic

    client = anthropic.Anthropic(api_key=KEY, max_retries=0)
    m = client.messages.create(model="claude-haiku-4-5", max_tokens=200,
                               messages=[{"role": "user", "content": question}])
    print("plain:", m.content[0].text, m.usage.input_tokens, m.usage.output_tokens)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=200,
                                messages=[{"role": "user", "content": "stream " + question}]) as s:
        final = s.get_final_message()
    print("stream:", final.content[0].text, final.usage.output_tokens)
    tool = {"name": "lookup", "description": "Look a city up.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    messages = [{"role": "user", "content": "Find " + question}]
    for _ in range(3):
        m = client.messages.create(model="claude-haiku-4-5", max_tokens=200, tools=[tool], messages=messages)
        uses = [b for b in m.content if b.type == "tool_use"]
        if not uses:
            print("tools:", m.content[0].text)
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": u.id, "content": f"result for {u.input}"} for u in uses]})


def gemini_agent(question: str) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(retry_options=None))
    r = client.models.generate_content(model="gemini-2.5-flash", contents=question)
    print("plain:", r.text, r.usage_metadata.prompt_token_count, r.usage_metadata.candidates_token_count)
    parts = [c.text for c in client.models.generate_content_stream(model="gemini-2.5-flash",
                                                                   contents="stream " + question) if c.text]
    print("stream:", "".join(parts))


def errors_agent(question: str) -> None:
    """Each recorded failure must replay as the same exception class."""
    import anthropic
    import openai

    client = openai.OpenAI(api_key=KEY, max_retries=0)
    for fault in ("429", "500", "reset"):
        try:
            client.chat.completions.create(model="gpt-4o-mini", extra_headers={"x-fake-fault": fault},
                                           messages=[{"role": "user", "content": f"{fault} {question}"}])
            print(fault, "no error")
        except openai.APIError as exc:
            print(fault, type(exc).__name__, getattr(exc, "status_code", None))
    ac = anthropic.Anthropic(api_key=KEY, max_retries=0)
    try:
        ac.messages.create(model="claude-haiku-4-5", max_tokens=10, extra_headers={"x-fake-fault": "429"},
                           messages=[{"role": "user", "content": question}])
    except anthropic.APIError as exc:
        print("anthropic 429", type(exc).__name__)
    print("still serving:", client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "after " + question}]).choices[0].message.content)


if __name__ == "__main__":
    which = sys.argv[1]
    q = sys.argv[2] if len(sys.argv) > 2 else "What is the capital of France?"
    {"openai": openai_agent, "anthropic": anthropic_agent, "gemini": gemini_agent, "errors": errors_agent}[which](q)

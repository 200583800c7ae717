#!/usr/bin/env node
// A small agent on the official `openai` npm package: a tool loop, with the
// final answer streamed. The SDK reads OPENAI_BASE_URL itself, so
// `rewind record -- node node_agent.mjs` records it with no code change.
// Needs `npm install openai`. Usage: node node_agent.mjs ["question"]

import OpenAI from "openai";

const WEATHER = { paris: "18°C, light rain", tokyo: "24°C, sunny", lima: "16°C, overcast" };

const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather in a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string", description: "the city" } },
        required: ["city"],
      },
    },
  },
];

// A local, deterministic tool: finds a known city named in its argument.
function getWeather(city) {
  for (const [name, weather] of Object.entries(WEATHER)) {
    if (city.toLowerCase().includes(name)) {
      return `${name[0].toUpperCase()}${name.slice(1)}: ${weather}`;
    }
  }
  return `No weather data for '${city}'.`;
}

async function main() {
  const question = process.argv[2] ?? "What is the weather in Paris right now?";
  const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "sk-demo-rewind" });
  const messages = [{ role: "user", content: question }];
  for (let round = 0; round < 4; round++) {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages,
      tools: TOOLS,
      stream: true,
    });
    let text = "";
    const calls = [];
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta ?? {};
      if (delta.content) {
        text += delta.content;
        process.stdout.write(delta.content);
      }
      for (const fragment of delta.tool_calls ?? []) {
        const call = (calls[fragment.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
        if (fragment.id) call.id = fragment.id;
        if (fragment.function?.name) call.function.name = fragment.function.name;
        if (fragment.function?.arguments) call.function.arguments += fragment.function.arguments;
      }
    }
    if (calls.length === 0) {
      process.stdout.write("\n");
      return 0;
    }
    messages.push({ role: "assistant", content: text || null, tool_calls: calls });
    for (const call of calls) {
      const args = JSON.parse(call.function.arguments || "{}");
      messages.push({ role: "tool", tool_call_id: call.id, content: getWeather(String(args.city ?? "")) });
    }
  }
  console.error("gave up: the model kept calling tools");
  return 1;
}

process.exitCode = await main();

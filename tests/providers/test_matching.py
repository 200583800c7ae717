from __future__ import annotations

import copy

from rewind_vcs.providers import match_key
from rewind_vcs.providers.matching import FieldDiff, closest, diff_fields
from tests.providers.builders import request

TURN_1 = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a travel agent."},
        {"role": "user", "content": "Find me a flight to Paris."},
    ],
    "temperature": 0.2,
    "tools": [
        {
            "type": "function",
            "function": {"name": "search_flights", "parameters": {"type": "object"}},
        }
    ],
}
TURN_2 = copy.deepcopy(TURN_1)
TURN_2["messages"] += [
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "search_flights", "arguments": '{"to": "CDG"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "AF123 at 09:00"},
]


def _chat(body: dict):
    return request("/v1/chat/completions", body)


def _changed(body: dict, edit) -> dict:
    out = copy.deepcopy(body)
    edit(out)
    return out


def test_identical_requests_have_no_differences() -> None:
    assert diff_fields(_chat(TURN_2), _chat(copy.deepcopy(TURN_2))) == []


def test_tool_call_ids_are_not_differences() -> None:
    renamed = _changed(
        TURN_2,
        lambda b: (
            b["messages"][2]["tool_calls"][0].update(id="call_9"),
            b["messages"][3].update(tool_call_id="call_9"),
        ),
    )
    assert diff_fields(_chat(TURN_2), _chat(renamed)) == []
    assert match_key(_chat(TURN_2)) == match_key(_chat(renamed))


def test_message_content_difference_names_the_index() -> None:
    edited = _changed(TURN_2, lambda b: b["messages"][3].update(content="AF456 at 11:00"))
    diffs = diff_fields(_chat(TURN_2), _chat(edited))
    assert diffs == [FieldDiff("messages[2].content", "'AF123 at 09:00'", "'AF456 at 11:00'")]
    # the system message is the view's `system`, so the tool result is messages[2]
    assert str(diffs[0]) == "messages[2].content: 'AF123 at 09:00' vs 'AF456 at 11:00'"


def test_model_params_system_tools_and_stream() -> None:
    def edit(b: dict) -> None:
        b["model"] = "gpt-4o"
        b["temperature"] = 0.9
        b["seed"] = 7
        b["messages"][0]["content"] = "You are a pirate."
        b["tools"][0]["function"]["name"] = "search_trains"
        b["stream"] = True

    diffs = {
        d.field: (d.old, d.new) for d in diff_fields(_chat(TURN_1), _chat(_changed(TURN_1, edit)))
    }
    assert diffs == {
        "model": ("'gpt-4o-mini'", "'gpt-4o'"),
        "system": ("'You are a travel agent.'", "'You are a pirate.'"),
        "params.temperature": ("0.2", "0.9"),
        "params.seed": ("<absent>", "7"),
        "tools": ("[search_flights]", "[search_trains]"),
        "stream": ("false", "true"),
    }


def test_tool_schema_difference_names_the_tool_and_path() -> None:
    edited = _changed(
        TURN_1, lambda b: b["tools"][0]["function"]["parameters"].update(required=["to"])
    )
    (diff,) = diff_fields(_chat(TURN_1), _chat(edited))
    assert diff.field == "tools[search_flights].parameters.required"


def test_extra_message_and_tool_call_arguments() -> None:
    (longer,) = diff_fields(_chat(TURN_1), _chat(TURN_2))
    assert longer == FieldDiff("messages[1]", "<absent>", 'assistant: search_flights(to="CDG")')
    args = _changed(
        TURN_2,
        lambda b: b["messages"][2]["tool_calls"][0]["function"].update(arguments='{"to": "ORY"}'),
    )
    (diff,) = diff_fields(_chat(TURN_2), _chat(args))
    assert diff == FieldDiff(
        "messages[1].tool_calls", 'search_flights(to="CDG")', 'search_flights(to="ORY")'
    )


def test_long_strings_show_where_they_start_to_differ() -> None:
    long_a = "Please plan a seven day itinerary through Provence, starting in Avignon and ending in Nice."
    long_b = long_a.replace("Nice", "Marseille")
    (diff,) = diff_fields(
        _chat(_changed(TURN_1, lambda b: b["messages"][1].update(content=long_a))),
        _chat(_changed(TURN_1, lambda b: b["messages"][1].update(content=long_b))),
    )
    assert diff.old.startswith("…") and "Nice" in diff.old and "Marseille" in diff.new
    assert len(diff.old) <= 62


def test_details_outside_the_view_fall_back_to_the_canonical_path() -> None:
    def with_image(url: str) -> dict:
        return _changed(
            TURN_1,
            lambda b: b["messages"][1].update(
                content=[
                    {"type": "text", "text": "Where is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ]
            ),
        )

    (diff,) = diff_fields(
        _chat(with_image("https://x/a.png")), _chat(with_image("https://x/b.png"))
    )
    assert diff.field == "body.messages[1].content[1].image_url.url"
    assert (diff.old, diff.new) == ("'https://x/a.png'", "'https://x/b.png'")


def test_different_providers() -> None:
    anthropic = request(
        "/v1/messages", {"model": "claude-haiku-4-5", "messages": []}, host="api.anthropic.com"
    )
    assert diff_fields(_chat(TURN_1), anthropic) == [FieldDiff("provider", "openai", "anthropic")]


def test_closest_prefers_same_endpoint_then_fewest_and_longest_prefix() -> None:
    embeddings = request("/v1/embeddings", {"model": "text-embedding-3-small", "input": "Paris"})
    turn_3 = _changed(
        TURN_2, lambda b: b["messages"].append({"role": "user", "content": "Book it."})
    )
    recorded = [(1, _chat(TURN_1)), (2, _chat(TURN_2)), (3, _chat(turn_3)), (4, embeddings)]
    incoming = _changed(TURN_2, lambda b: b["messages"][3].update(content="AF999 at 23:00"))
    n, diffs = closest(_chat(incoming), recorded)
    assert n == 2
    assert [d.field for d in diffs] == ["messages[2].content"]
    # an exact match is closest, with no differences
    assert closest(_chat(copy.deepcopy(TURN_1)), recorded) == (1, [])
    # an embeddings call finds the embeddings step even though chat steps come first
    other_input = request("/v1/embeddings", {"model": "text-embedding-3-small", "input": "Rome"})
    assert closest(other_input, recorded)[0] == 4
    assert closest(_chat(TURN_1), []) is None


def test_closest_ties_go_to_the_earliest() -> None:
    a = _changed(TURN_1, lambda b: b.update(temperature=0.3))
    assert closest(_chat(TURN_1), [(5, _chat(a)), (6, _chat(a))])[0] == 5

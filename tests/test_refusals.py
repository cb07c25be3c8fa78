"""Refusals a person and a program can both read: every callable's bad input is INVALID_ARGUMENT
with a sentence naming the field as the page labels it and, in the error's details, the field's
own name (`details.field`); and no refusal sentence any callable can give shows a field id."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from calling import Code
from firebase_functions import https_fn
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agenttrader.api import (  # noqa: F401  (each module declares its callables)
    admin_callables,
    alpaca_connect,
    backtest_callables,
    callables,
    keys_callables,
    notify_callables,
    portfolio_callables,
    position_callables,
    strategy_callables,
)
from agenttrader.api.guard import INPUTS, parse
from agenttrader.api.messages import label

API = Path(__file__).resolve().parents[1] / "functions" / "agenttrader" / "api"
MAIN = Path(__file__).resolve().parents[1] / "functions" / "main.py"
SNAKE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")
"""A field id as code spells it (`allocation_usd`); the page's labels never look like this."""

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def exposed() -> set[str]:
    """The callables main.py deploys (`name = _exposed(module.name, ...)`)."""
    tree = ast.parse(MAIN.read_text())
    return {
        node.targets[0].id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", "") == "_exposed"
        and isinstance(node.targets[0], ast.Name)
    }


def test_every_deployed_callable_declares_its_input() -> None:
    assert exposed() <= set(INPUTS)
    assert len(exposed()) >= 25


def refusal(model: type[BaseModel], data: Any) -> https_fn.HttpsError | None:
    try:
        parse(model, data)
    except https_fn.HttpsError as error:
        return error
    return None


def check(model: type[BaseModel], data: Any) -> None:
    error = refusal(model, data)
    if error is None:
        return
    assert error.code == Code.INVALID_ARGUMENT
    field = (error.details or {}).get("field")
    if field is None:  # the request as a whole: not an object, too large
        assert not isinstance(data, dict) or len(repr(data)) > 1000, error.message
        return
    if field in model.model_fields:
        assert error.message.startswith(label(field) + ":"), error.message
        assert not SNAKE.search(error.message), error.message
    else:  # a field the form never sends: named as the caller spelled it, quoted
        assert isinstance(data, dict) and field in data, (field, data)
        assert f"“{field}”" in error.message


@pytest.mark.parametrize("name", sorted(INPUTS))
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_any_input_is_refused_with_its_field_named_for_people_and_programs(
    name: str, data: st.DataObject
) -> None:
    model = INPUTS[name]
    fields = sorted(model.model_fields)
    keys = st.sampled_from(fields) if fields else st.text(min_size=1, max_size=8)
    request = data.draw(
        st.dictionaries(keys | st.text(min_size=1, max_size=8), JSON, max_size=6) | JSON
    )
    check(model, request)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_each_field_given_the_wrong_kind_of_value_is_named(name: str) -> None:
    """A value of the wrong kind in one field, everything else left out: the first field
    pydantic finds wrong is the one named, by the page's label and by its own name."""
    model = INPUTS[name]
    for field in model.model_fields:
        for wrong in ({"not": "a value"}, "", "zz-not-valid-zz"):
            error = refusal(model, {field: wrong})
            if error is None:
                continue  # a value this field takes (the others' absence refused it already)
            assert error.code == Code.INVALID_ARGUMENT, (name, field)
            named = (error.details or {}).get("field")
            assert named in model.model_fields, (name, field, error.details)
            assert error.message.startswith(label(named) + ":")
            assert not SNAKE.search(error.message), error.message
        assert refusal(model, {field: {"not": "a value"}}) is not None, (name, field)
    if model.model_fields:
        error = refusal(model, {"surprise_field": 1})
        assert error is not None and (error.details or {}).get("field") in (
            *model.model_fields,
            "surprise_field",
        )


def test_a_check_across_fields_names_the_field_to_change() -> None:
    request = {
        "strategy": "momentum_20d",
        "symbols": ["AAPL"],
        "allocation_usd": "1000",
        "start": "2024-06-30",
        "end": "2024-01-02",
    }
    model = INPUTS["run_backtest"]
    error = refusal(model, request)
    assert error is not None and error.details == {"field": "end"}
    assert error.message == "To: choose a day after From"
    error = refusal(model, {**request, "start": "2018-01-02", "end": "2024-01-02"})
    assert error is not None and error.details == {"field": "start"}
    assert error.message.startswith("From: a backtest covers at most 5 years")


def sentences() -> list[tuple[str, int, str]]:
    """Every literal piece of every refusal the callables can give: the message of each
    `fail(code, message, ...)` and of each ValueError or FieldError their validators raise."""
    found = []
    for path in sorted(API.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            position = {"fail": 1, "ValueError": 0, "FieldError": 1, "HttpsError": 1}.get(name)
            if position is None or len(node.args) <= position:
                continue
            message = node.args[position]
            labelled = {  # label("field"): the page's label, looked up by the field's id
                id(arg)
                for call in ast.walk(message)
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "label"
                for arg in call.args
            }
            for part in ast.walk(message):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    if id(part) not in labelled:
                        found.append((path.name, node.lineno, part.value))
    return found


def test_no_refusal_sentence_shows_a_field_id() -> None:
    walked = sentences()
    assert len(walked) > 40  # the walk reaches the refusals
    assert any("is over your" in text for _, _, text in walked)  # the position limit's
    ids = {field for model in INPUTS.values() for field in model.model_fields}
    shown = [
        (file, line, text)
        for file, line, text in walked
        if SNAKE.search(text) or any(re.search(rf"\b{f}\b", text) for f in ids if "_" in f)
    ]
    assert shown == []

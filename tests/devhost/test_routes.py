"""Route templates: parameters, constraints, optional and catch-all segments, and which route wins."""

from __future__ import annotations

import pytest

from devhost.errors import BindingError
from devhost.routes import RouteTemplate


def test_parameters_are_matched_per_segment_and_decoded():
    assert RouteTemplate.parse("models/{model}/runs/{run}").match("models/a%20b/runs/7") == {"model": "a b", "run": "7"}


def test_literals_match_case_insensitively_and_a_trailing_slash_is_allowed():
    assert RouteTemplate.parse("Models/{m}").match("models/x/") == {"m": "x"}


def test_an_int_constraint_rejects_other_text():
    route = RouteTemplate.parse("runs/{id:int}")
    assert route.match("runs/12") == {"id": "12"}
    assert route.match("runs/twelve") is None


def test_an_optional_last_parameter_may_be_absent():
    route = RouteTemplate.parse("files/{name?}")
    assert route.match("files") == {}
    assert route.match("files/a") == {"name": "a"}


def test_a_catch_all_takes_the_rest_of_the_path():
    assert RouteTemplate.parse("blobs/{*path}").match("blobs/a/b/c.csv") == {"path": "a/b/c.csv"}


def test_literal_segments_take_precedence_over_parameters():
    literal, param = RouteTemplate.parse("models/latest"), RouteTemplate.parse("models/{m}")
    assert literal.precedence < param.precedence


def test_an_unknown_constraint_is_an_error_at_start_up():
    with pytest.raises(BindingError, match="unknown route constraint"):
        RouteTemplate.parse("x/{id:bogus}")

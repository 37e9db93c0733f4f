"""`Settings.endpoint(name)`: a mapping lookup that answers as the search it replaced did, also after
the endpoint list is replaced or changed in place."""

from __future__ import annotations

import pytest

from mlops_console.config import Settings, parse_settings


def fleet(n: int) -> Settings:
    return parse_settings(
        {
            "endpoints": [
                {"name": f"e{i}", "url": f"http://127.0.0.1:{5000 + i}", "runbook": f"https://wiki/e{i}"}
                for i in range(n)
            ]
        }
    )


def test_each_endpoint_is_found_by_its_name_and_an_unknown_name_is_a_key_error() -> None:
    settings = fleet(300)
    for i in (0, 1, 150, 299):
        assert settings.endpoint(f"e{i}").url == f"http://127.0.0.1:{5000 + i}"
    with pytest.raises(KeyError):
        settings.endpoint("e300")
    with pytest.raises(KeyError):
        settings.endpoint("")


def test_the_first_of_two_endpoints_with_one_name_answers() -> None:
    # `config check` refuses duplicates; settings built in code may still hold them.
    settings = Settings.model_validate(
        {
            "endpoints": [
                {"name": "a", "url": "http://127.0.0.1:1"},
                {"name": "a", "url": "http://127.0.0.1:2"},
            ]
        }
    )
    assert settings.endpoint("a").url == "http://127.0.0.1:1"


def test_a_replaced_list_and_items_changed_in_place_are_seen() -> None:
    settings = fleet(3)
    assert settings.endpoint("e1").url == "http://127.0.0.1:5001"
    settings.endpoints[1] = settings.endpoints[1].model_copy(update={"url": "http://127.0.0.1:7001"})
    assert settings.endpoint("e1").url == "http://127.0.0.1:7001"
    settings.endpoints[2] = settings.endpoints[2].model_copy(update={"name": "renamed"})
    assert settings.endpoint("renamed").url == "http://127.0.0.1:5002"
    with pytest.raises(KeyError):
        settings.endpoint("e2")
    settings.endpoints.append(settings.endpoints[0].model_copy(update={"name": "added"}))
    assert settings.endpoint("added").url == "http://127.0.0.1:5000"
    settings.endpoints = [e for e in settings.endpoints if e.name != "e0"]
    with pytest.raises(KeyError):
        settings.endpoint("e0")
    assert settings.endpoint("added").name == "added"


def test_the_runbook_of_an_endpoint_comes_through_the_lookup() -> None:
    settings = fleet(50)
    assert settings.runbook_for("down", "e42") == "https://wiki/e42"
    assert settings.runbook_for("down", "nope") is None


def test_a_built_lookup_does_not_change_what_settings_equal() -> None:
    looked_up, fresh = fleet(5), fleet(5)
    looked_up.endpoint("e3")
    assert looked_up == fresh and fresh == looked_up
    assert looked_up.model_copy(update={"endpoints": looked_up.endpoints[:4]}) != fresh

"""Redaction of every apprise URL form that carries a secret, and scrubbing of texts that quote one.

A notification URL is stored, logged and shown only redacted; whatever could echo it (an apprise
error) is scrubbed of its secret parts. Tokens sit in many places depending on the service: the host
(`slack://`, `pover://`), path segments (Discord, Teams, Telegram, webhooks), user:password, query
values, fragments, even the port position. Each form is pinned to its exact redacted text.
"""

from __future__ import annotations

import pytest

from mlops_console.core.notifier import backoff, channel_id, deliver
from mlops_console.core.secrets import MASK, env_values, expand, redact_url, references, scrub, url_secrets
from tests._loopback import Sink
from tests.fixtures_mlflow import free_port

# url -> (shown, the secrets it carries)
FORMS: dict[str, tuple[str, list[str]]] = {
    # path tokens
    "slack://TokenA1/TokenB2/TokenC3zz/#general": (
        "slack://****/****/****/#general",
        ["TokenA1", "TokenB2", "TokenC3zz"],
    ),
    "slack://mybot@xoxb-1234-5678-abcdefSECRET/#ops": (
        "slack://****@****/#ops",
        ["xoxb-1234-5678-abcdefSECRET"],
    ),
    "https://discord.com/api/webhooks/4174216298/AbCdEfSeCrEt99": (
        "https://discord.com/api/webhooks/****/****",
        ["4174216298", "AbCdEfSeCrEt99"],
    ),
    "discord://4174216298/AbCdEfSeCrEt99/?avatar=No": (
        "discord://****/****/?avatar=****",
        ["4174216298", "AbCdEfSeCrEt99"],
    ),
    "msteams://TeamTokA/TeamTokB/TeamTokC/": (
        "msteams://****/****/****/",
        ["TeamTokA", "TeamTokB", "TeamTokC"],
    ),
    "tgram://123456789:AAHdqTcvBotTok/-100123456": (
        "tgram://****:****/****",
        ["AAHdqTcvBotTok", "-100123456"],
    ),
    "gotify://gotify.example.com/AppTokenGot1": ("gotify://gotify.example.com/****", ["AppTokenGot1"]),
    "jsons://hooks.example.com/api/v1/AbC123xyz": ("jsons://hooks.example.com/api/****/****", ["AbC123xyz"]),
    "json://[::1]:8999/hook/PathTok999": ("json://[::1]:8999/hook/****", ["PathTok999"]),
    # ntfy topics are the password of a public topic
    "ntfy://alerts-team-x9": ("ntfy://****", ["alerts-team-x9"]),
    "ntfy://ntfy.example.com/ops?auth=tk_SeCrEt123": (
        "ntfy://ntfy.example.com/****?auth=****",
        ["tk_SeCrEt123"],
    ),
    # keys in the host and user positions
    "pagerduty://IntegrationKey42@ApiKey4711/": (
        "pagerduty://****@****/",
        ["IntegrationKey42", "ApiKey4711"],
    ),
    "pagerduty://IntegrationKey42@ApiKey4711/source/component?region=eu": (
        "pagerduty://****@****/source/component?region=****",
        ["IntegrationKey42", "ApiKey4711"],
    ),
    "opsgenie://ApiKeyOps123/@team": ("opsgenie://****/****", ["ApiKeyOps123"]),
    "pover://UserKey123@AppToken456": ("pover://****@****", ["UserKey123", "AppToken456"]),
    # user:password
    "ntfys://user:Passw0rdX@ntfy.example.com/ops-topic": (
        "ntfys://****@ntfy.example.com/****",
        ["Passw0rdX"],
    ),
    "mailto://alice:MailPassw0rd@gmail.com": ("mailto://****@gmail.com", ["MailPassw0rd"]),
    "json://user:WebPass11@hooks.example.com:8443/notify": (
        "json://****@hooks.example.com:8443/notify",
        ["WebPass11"],
    ),
    "json://us%40er:p%40ssW0rd@host.example.com/": (
        "json://****@host.example.com/",
        ["p%40ssW0rd", "p@ssW0rd"],
    ),
    # query values, fragments, a token where a port goes
    "mailtos://smtp.example.com:587?user=alice&pass=MailPassw0rd&to=ops@example.com": (
        "mailtos://smtp.example.com:587?user=****&pass=****&to=****",
        ["MailPassw0rd"],
    ),
    "json://hooks.example.com/notify?token=QueryTok99": (
        "json://hooks.example.com/notify?token=****",
        ["QueryTok99"],
    ),
    "json://127.0.0.1:8999/hook#FragTok1234": ("json://127.0.0.1:8999/hook#****", ["FragTok1234"]),
    "json://host.example.com:TokPort1/x": ("json://host.example.com:****/x", ["TokPort1"]),
    # references stay visible: they are not the secret
    "json://127.0.0.1/hook/${HOOK_TOKEN}?key=${PAGER_KEY}": (
        "json://127.0.0.1/hook/${HOOK_TOKEN}?key=${PAGER_KEY}",
        [],
    ),
}


@pytest.mark.parametrize("url", list(FORMS))
def test_every_secret_carrying_form_is_redacted_exactly(url: str) -> None:
    shown, secrets = FORMS[url]
    assert redact_url(url) == shown
    assert not [s for s in secrets if s in shown]
    hidden = url_secrets(url)
    assert set(secrets) <= set(hidden), "what is hidden in the URL is also scrubbed from messages"


@pytest.mark.parametrize("url", list(FORMS))
def test_an_error_quoting_the_url_is_scrubbed_of_its_secrets(url: str) -> None:
    _, secrets = FORMS[url]
    error = f"failed to send to {url}: connection refused"
    cleaned = scrub(error, [url, *url_secrets(url)])
    assert not [s for s in secrets if s in cleaned], cleaned
    assert (cleaned.endswith(": connection refused") and MASK in cleaned) or not secrets


def test_redaction_keeps_hosts_ports_and_words_visible() -> None:
    assert (
        redact_url("json://hooks.example.com:8443/api/notify") == "json://hooks.example.com:8443/api/notify"
    )
    assert redact_url("json://localhost/hook") == "json://localhost/hook"
    assert redact_url("form://pager/team-a/notify") == "form://pager/team-a/notify", "webhook hosts stay"
    assert redact_url("slack://not-a-hostname/x") == "slack://****/x", "a token where a host goes"
    assert redact_url("json://h.example.com/averyveryverylongword") == "json://h.example.com/****"
    assert redact_url("json://h.example.com/sixteencharsxyz") == "json://h.example.com/sixteencharsxyz"
    assert redact_url("no scheme") == "<invalid url>" and url_secrets("no scheme") == ["no scheme"]


def test_scrub_hides_encoded_and_escaped_forms_and_labels_variables() -> None:
    secret = "p@ss/w0rd's"
    text = f"a {secret} b {'p%40ss%2Fw0rd%27s'} c {'p%40ss/w0rd%27s'} d {secret!r}"
    cleaned = scrub(text, [secret])
    assert "w0rd" not in cleaned and cleaned.count(MASK) == 4
    assert scrub("token Tk9sEcReT here", {"HOOK_TOKEN": "Tk9sEcReT"}) == "token ${HOOK_TOKEN} here"
    assert scrub("pin 123 and 1234", ["123"]) == "pin 123 and 1234", "values under 4 characters are left"
    assert scrub("pin 1234", ["1234"]) == f"pin {MASK}"
    # the longest secret first: a secret containing another is hidden whole
    assert scrub("abcdefgh", ["abcd", "abcdefgh"]) == MASK


def test_references_expand_and_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "Tk9sEcReT")
    monkeypatch.delenv("ABSENT_VAR", raising=False)
    template = "json://h/${HOOK_TOKEN}/${HOOK_TOKEN}?k=${ABSENT_VAR}"
    assert references(template) == ["HOOK_TOKEN", "ABSENT_VAR"]
    assert env_values(template) == {"HOOK_TOKEN": "Tk9sEcReT"}
    with pytest.raises(LookupError, match=r"\$\{ABSENT_VAR\} not set"):
        expand(template)
    assert expand("json://h/${HOOK_TOKEN}") == "json://h/Tk9sEcReT"


def test_a_failed_real_delivery_never_shows_a_path_token_or_password() -> None:
    port = free_port()  # nothing listens there: apprise's error quotes what it tried
    url = f"json://user:WebPass11@127.0.0.1:{port}/hook/PathTok999?token=QueryTok99"
    delivery = deliver(url, "title", "body", "critical", "firing", timeout=2)
    assert not delivery.ok and delivery.error
    assert not [s for s in ("WebPass11", "PathTok999", "QueryTok99") if s in delivery.error], delivery.error


def test_channel_id_is_stable_and_distinct_per_url() -> None:
    assert channel_id("json://a/${T}") == channel_id("json://a/${T}")
    assert channel_id("json://a/${T}") != channel_id("json://b/${T}")
    assert len(channel_id("x")) == 16


@pytest.mark.parametrize(
    ("severity", "kind", "shown_as"),
    [
        ("critical", "firing", "failure"),
        ("warning", "reminder", "warning"),
        ("info", "firing", "info"),
        ("critical", "resolved", "success"),
        ("warning", "resolved", "success"),
    ],
)
def test_a_page_reaches_the_channel_with_the_type_of_its_severity(
    severity: str, kind: str, shown_as: str
) -> None:
    # The type decides how the channel shows the page (colour, icon, PagerDuty's urgency).
    sink = Sink().start()
    try:
        assert deliver(sink.url, "t", "b", severity, kind, timeout=5).ok
    finally:
        sink.stop()
    assert [m["type"] for m in sink.received] == [shown_as]


def test_retries_back_off_doubling_from_one_second_up_to_five_minutes() -> None:
    assert [backoff(n) for n in (0, 1, 2, 3, 4, 9, 10, 50)] == [1, 1, 2, 4, 8, 256, 300, 300]


def test_a_short_value_does_not_stop_the_longer_secrets_after_it_from_being_scrubbed() -> None:
    assert scrub("pin 123, token Tk9sEcReT", ["123", "Tk9sEcReT"]) == f"pin 123, token {MASK}"
    assert (
        scrub("pin 123, token Tk9sEcReT", {"PIN": "123", "TOKEN": "Tk9sEcReT"}) == "pin 123, token ${TOKEN}"
    )


def test_scrub_hides_a_secret_whole_whatever_its_forms_and_neighbours() -> None:
    # The repr-escaped form (an error message quoting the value) is hidden from its first character.
    value = "Tok\nEn12"
    assert scrub(f"refused {value!r}", [value]) == f"refused '{MASK}'"
    # Longest first, not in reverse alphabetical order: a secret containing another is hidden whole.
    assert scrub("key ab1234 end", ["b123", "ab1234"]) == f"key {MASK} end"


def test_a_password_holding_a_colon_is_one_secret() -> None:
    url = "json://user:pa:ssWord1@hooks.example.com/notify"
    assert redact_url(url) == "json://****@hooks.example.com/notify"
    assert "pa:ssWord1" in url_secrets(url)
    assert scrub(f"failed: {url}", url_secrets(url)) == "failed: json://****:****@hooks.example.com/notify"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # a URL in a query value: only the first `://` ends the scheme
        (
            "json://hooks.example.com/notify?next=https://x.example.com",
            "json://hooks.example.com/notify?next=****",
        ),
        # IPv6 hosts without a port keep their colons
        ("json://[::1]/hook/PathTok999", "json://[::1]/hook/****"),
        # a reference where a host goes is not the secret; a bare `:TOKEN` is no host
        ("slack://${SLACK_TOKEN}/ops", "slack://${SLACK_TOKEN}/ops"),
        ("pover://:AppToken456", "pover://****"),
        # a word where a port goes stays, like a word in a path (16 letters at most)
        ("json://hooks.example.com:hook/x", "json://hooks.example.com:hook/x"),
        ("json://h.example.com/abcdefghijklmnop", "json://h.example.com/abcdefghijklmnop"),
        ("json://h.example.com/abcdefghijklmnopq", "json://h.example.com/****"),
        # a value holding `=` is hidden whole; an ntfy topic in the fragment too
        ("json://h.example.com/x?token=Sec=ret99", "json://h.example.com/x?token=****"),
        ("ntfy://ntfy.example.com/ops#alerts", "ntfy://ntfy.example.com/****#****"),
    ],
)
def test_url_forms_at_the_edges_of_the_parser(url: str, shown: str) -> None:
    assert redact_url(url) == shown

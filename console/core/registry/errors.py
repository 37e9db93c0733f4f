"""MLflow's exceptions as the registry errors people read: who lacks what right, which server did not
answer, with credentials never echoed."""

from __future__ import annotations

import re

from mlops_console.core.registry.records import (
    RegistryError,
    RegistryNotAuthenticated,
    RegistryNotFound,
    RegistryNotPermitted,
    RegistryUnavailable,
    registry_user,
)


def translate_error(exc: BaseException, what: str, *, model: str | None, write: bool) -> RegistryError:
    """The registry error for `exc`, raised while doing `what` (to `model`; a write or a read)."""
    if isinstance(exc, RegistryError):
        return exc
    code = str(getattr(exc, "error_code", "") or "")
    message = str(getattr(exc, "message", None) or exc).strip().splitlines()[0] if str(exc) else repr(exc)
    if code == "UNAUTHENTICATED" or re.search(r"\b401\b", message):
        user = registry_user()
        if user == "anonymous":
            return RegistryNotAuthenticated(
                "not authenticated: the registry wants credentials (MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD, or [registry] username and password)"
            )
        return RegistryNotAuthenticated(
            f"not authenticated: the registry refused the credentials of {user} "
            f"(wrong, or an expired password or token)"
        )
    if code == "PERMISSION_DENIED" or re.search(r"\b403\b", message):
        right = "EDIT" if write else "READ"
        return RegistryNotPermitted(
            f"not permitted: {registry_user()} lacks {right} on {model or 'the registry'}"
        )
    if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
        return RegistryNotFound(message)
    if code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "INVALID_STATE", "BAD_REQUEST"):
        return RegistryError(message)
    if "API request to" in message or isinstance(exc, ConnectionError | TimeoutError | OSError):
        return RegistryUnavailable(f"registry unreachable: {shorten_network_error(message)}")
    if code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "SERVICE_UNDER_MAINTENANCE"):
        return RegistryUnavailable(f"registry unreachable: {message}")
    return RegistryError(f"registry error during {what}: {message}")


def is_missing_artifact(exc: BaseException) -> bool:
    text = str(exc).lower()
    code = str(getattr(exc, "error_code", "") or "")
    return (
        isinstance(exc, FileNotFoundError)
        or code == "RESOURCE_DOES_NOT_EXIST"
        or "no such file" in text
        or "not found" in text
        or "404" in text
    )


def shorten_network_error(message: str) -> str:
    # requests' messages nest three exception reprs deep; the innermost reason is what a user needs.
    match = re.search(r"API request to (\S+) failed", message)
    url = re.sub(r"//[^@/]*@", "//", match.group(1)) if match else None
    for reason in (
        "Connection refused",
        "timed out",
        "Name or service not known",
        "Max retries exceeded",
        "Failed to resolve",
        "Connection reset",
        "Remote end closed",
    ):
        if reason.lower() in message.lower():
            return f"{url}: {reason.lower()}" if url else reason.lower()
    return message[:300]

"""check's probes of the server itself: 1 reachable, 2 right URL (and which base URL would work instead),
3 server and version, 4 model present, and 9 auth (which reads what the others were refused)."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from localcodex.core.check.state import (
    CODEX_OSS_MINIMUM,
    OLLAMA_PORT,
    RESPONSES_SINCE,
    ProbeDeadline,
    ProbeRun,
)
from localcodex.core.check.types import Verdict, failed, passed, skipped, warned
from localcodex.domain.urls import BaseUrlMistake, diagnose, fixed_base, native_root, parse_version
from localcodex.errors import LocalcodexError

if TYPE_CHECKING:
    from localcodex.adapters.openai_compat import Reply, Timeouts

# -- URLs -------------------------------------------------------------------------------------------------------

_MISTAKE_TEXT = {
    BaseUrlMistake.NOT_A_URL: "it has no http:// or https://",
    BaseUrlMistake.DOUBLED_V1: "/v1 appears twice",
    BaseUrlMistake.DOUBLE_SLASH: "the path has // in it, which Ollama answers with a 301 redirect that a POST "
                                 "does not survive",
    BaseUrlMistake.ENDPOINT_PATH: "base_url must stop before the endpoint (Codex appends /responses itself)",
    BaseUrlMistake.OLLAMA_ROOT: "this is Ollama's native API; its OpenAI-compatible API (what Codex needs) "
    "lives under /v1",
    BaseUrlMistake.MISSING_V1: "the path lacks /v1",
    BaseUrlMistake.WRONG_SERVER: "this is not an OpenAI-compatible API",
}


# -- probe 1: reachable -----------------------------------------------------------------------------------------


def probe_reachable(run: ProbeRun) -> Verdict:
    from localcodex.adapters.openai_compat import ConnectionRefused, EndpointError, EndpointTimeout, TLSFailure

    if "://" not in run.base:
        good = fixed_base(f"http://{run.base}")
        return failed(f"{run.base!r} is not a URL Codex can use: it has no http:// or https://",
                      f'use base_url = "{good}"', url=run.base, error="bad_url")
    assert run.client is not None
    try:
        reply = run.client.request("GET", "models", timeouts=run.quick())
    except (ConnectionRefused, EndpointTimeout, TLSFailure) as exc:
        found = _find_working(run, exclude=())
        fix = f'{exc.hint}; {found[1]} answers at {found[0]}: use base_url = "{found[0]}"' if found else exc.hint
        if found:
            run.suggested = found[0]
        limit = {"time_limit_s": round(exc.seconds, 2)} if isinstance(exc, EndpointTimeout) else {}
        return failed(exc.message, fix, url=exc.url, error=exc.kind, suggested=found[0] if found else None, **limit)
    except EndpointError as exc:
        return failed(exc.message, exc.hint, url=exc.url, error=exc.kind)
    run.first_reply = reply
    return passed(f"{reply.url} answered HTTP {reply.status} in {reply.elapsed_s * 1000:.0f} ms",
                  url=reply.url, http_status=reply.status, server=reply.server, elapsed_s=round(reply.elapsed_s, 4))


# -- probe 2: right URL -----------------------------------------------------------------------------------------


def _json_object(reply: Reply) -> dict[str, Any] | None:
    """The body of a 200 answer when it is a JSON object; None for any other status or body."""
    if reply.status != 200:
        return None
    try:
        body = json.loads(reply.text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _models_shape(reply: Reply) -> bool:
    body = _json_object(reply)
    return body is not None and (isinstance(body.get("data"), list) or body.get("data", 0) is None)


def _who(run: ProbeRun, base: str) -> str:
    """Name what answers at a base URL: 'Ollama 0.32.15', or the server header, or a generic phrase."""
    from localcodex.adapters.openai_compat import EndpointError

    try:
        with run.live.openai_client(native_root(base), timeouts=run.quick()) as probe:
            reply = probe.request("GET", "api/version", timeouts=_short(run))
    except EndpointError:
        return "an OpenAI-compatible server"
    version = _version_of(reply)
    if version:
        return f"Ollama {version}"
    return f"an OpenAI-compatible server ({reply.server})" if reply.server else "an OpenAI-compatible server"


def _short(run: ProbeRun) -> Timeouts:
    from localcodex.adapters.openai_compat import Timeouts

    total = min(4.0, run.left())
    return Timeouts(connect=min(run.req.connect_timeout, 2.0, total), read=total, total=total)


def _answers_models(run: ProbeRun, base: str) -> bool:
    from localcodex.adapters.openai_compat import EndpointError

    try:
        with run.live.openai_client(base, env_key=run.req.env_key, headers=run.req.headers) as c:
            return _models_shape(c.request("GET", "models", timeouts=_short(run)))
    except ProbeDeadline:
        raise
    except (EndpointError, LocalcodexError):
        return False


def _candidates(run: ProbeRun) -> list[str]:
    """Base URLs worth trying when the given one is wrong: repaired paths first, then plain http for a TLS
    mistake, then the configured Ollama host, then the Ollama port on the same host."""
    given = run.base.strip()
    split = urllib.parse.urlsplit(given)
    fixed = fixed_base(given)
    found = [fixed]
    if split.scheme == "https":
        found.append(fixed.replace("https://", "http://", 1))
    found.append(run.live.host(run.req.host).openai)
    if split.hostname:
        host = f"[{split.hostname}]" if ":" in split.hostname else split.hostname
        found.append(f"http://{host}:{OLLAMA_PORT}/v1")
    unique: list[str] = []
    for url in found:
        if url not in unique and url.rstrip("/") != given.rstrip("/"):
            unique.append(url)
    return unique


def _find_working(run: ProbeRun, exclude: Iterable[str]) -> tuple[str, str] | None:
    """The first candidate base URL whose /models answers like an OpenAI API, with what answered there."""
    skip = {u.rstrip("/") for u in exclude}
    try:
        for base in _candidates(run):
            if base.rstrip("/") not in skip and _answers_models(run, base):
                return base, _who(run, base)
    except ProbeDeadline:  # the probe's time is up: report what the given URL did, without a suggestion
        return None
    return None


def probe_url(run: ProbeRun) -> Verdict:
    reply = run.first_reply
    assert reply is not None
    given = run.base
    if _models_shape(reply):
        return _url_ok(run, given)
    from localcodex.adapters.openai_compat import HOST_CHECK_FIX, host_check_refusal

    if host_check_refusal(reply.status, reply.text):
        run.host_refusals.append(f"{reply.url} answered HTTP 403 with an empty body")
        return failed(f"{reply.url} answered HTTP 403 with an empty body: Ollama's allowed-host check refused the "
                      "Host header this request carried", HOST_CHECK_FIX, url=reply.url, http_status=403,
                      host_check=True)
    if reply.status in (401, 403):
        run.auth_rejections.append(f"{reply.url} answered HTTP {reply.status}: {reply.error_message()}")
        return failed(
            f"{reply.url} answered HTTP {reply.status} ({reply.error_message()}): the URL may be right, "
            "but the server refused the request without a valid key",
            _key_fix(run), url=reply.url, http_status=reply.status,
        )
    ollama_here = _who(run, given).startswith("Ollama")
    mistake = diagnose(given, ollama_here)
    would = f"{given.rstrip('/')}/responses"
    found = _find_working(run, exclude=(given,))
    detail = f"{given}: {_MISTAKE_TEXT[mistake]}. Codex would POST {would}; {reply.url} answered {reply.describe()}"
    if found is None:
        return failed(
            detail,
            "check the port and path: Ollama serves the API at http://HOST:11434/v1; llama-server, LM Studio and "
            "vLLM at http://HOST:PORT/v1",
            given=given, mistake=mistake.value, answered=reply.describe(), suggested=None,
        )
    good, who = found
    run.suggested = good
    return failed(f"{detail}; {who} answers at {good}", f'use base_url = "{good}"',
                  given=given, mistake=mistake.value, answered=reply.describe(), suggested=good)


def _url_ok(run: ProbeRun, given: str) -> Verdict:
    clean = given.strip().rstrip("/")
    split = urllib.parse.urlsplit(clean)
    if "//" in split.path:
        # Ollama's mux answers 301 for a non-canonical path, POST included (server/routes.go ~2000, ~2018);
        # /models answered only through the redirect.
        good = urllib.parse.urlunsplit((split.scheme, split.netloc, re.sub(r"/{2,}", "/", split.path), "", ""))
        run.suggested = good
        return failed(f"{given}: the path has // in it; the server answered through a redirect (Ollama sends 301 "
                      f"to the cleaned path), which a POST to {clean}/responses does not survive",
                      f'use base_url = "{good}"', given=given, mistake="double slash", suggested=good)
    run.suggested = clean
    if given.strip() != clean:
        return warned(
            f"{clean}/models answers; the trailing slash is harmless to Codex (it trims it) but not to every client",
            f'use base_url = "{clean}"', given=given, mistake="trailing slash", suggested=clean,
        )
    return passed(f"{clean}/models answers like an OpenAI API; Codex will POST {clean}/responses",
                  given=given, suggested=clean)


def _key_fix(run: ProbeRun) -> str:
    if run.req.env_key:
        return f"the key in ${run.req.env_key} was refused: check its value (it is never printed)"
    return "pass --env-key VAR with the variable that holds the key, and set env_key = \"VAR\" in the provider"


# -- probe 3: server and version --------------------------------------------------------------------------------


def _version_of(reply: Reply) -> str | None:
    body = _json_object(reply)
    version = body.get("version") if body is not None else None
    return version if isinstance(version, str) and version else None


def probe_server(run: ProbeRun) -> Verdict:
    assert run.client is not None
    root = native_root(run.base)
    reply = run.client.request("GET", f"{root}/api/version", timeouts=run.quick())
    version = _version_of(reply)
    if version is None:
        run.server_kind = "openai-compatible"
        what = f" ({reply.server})" if reply.server else ""
        return skipped(
            f"not Ollama{what}: {root}/api/version answered HTTP {reply.status}, so the Ollama-only checks "
            "(version, pulled, capabilities, loaded context) are skipped",
            server=reply.server, ollama=False,
        )
    _attach_ollama(run, root, version)
    return judge_version(version)


def _attach_ollama(run: ProbeRun, root: str, version: str) -> None:
    run.server_kind = "ollama"
    run.version = version
    run.ollama = run.live.ollama_at(run.live.host(root), timeout=run.quick().total)


def judge_version(version: str) -> Verdict:
    parsed = parse_version(version)
    upgrade = "upgrade Ollama to 0.13.4 or newer: https://ollama.com/download"
    if parsed is None or parsed == (0, 0, 0):
        return warned(f"Ollama {version} (a development build): its version cannot be compared",
                      "if /v1/responses fails below, upgrade Ollama", version=version, ollama=True)
    if parsed < RESPONSES_SINCE:
        return failed(f"Ollama {version} is too old: /v1/responses, the only API Codex speaks, arrived in 0.13.3; "
                      "upgrade Ollama", upgrade, version=version, ollama=True)
    if parsed < CODEX_OSS_MINIMUM:
        return warned(f"Ollama {version} serves /v1/responses, but `codex --oss` requires 0.13.4: upgrade Ollama",
                      upgrade, version=version, ollama=True)
    return passed(f"Ollama {version} (serves /v1/responses; `codex --oss` needs 0.13.4 or newer)",
                  version=version, ollama=True)


# -- probe 4: model present -------------------------------------------------------------------------------------


def probe_model(run: ProbeRun) -> Verdict:
    assert run.client is not None
    run.served = run.client.models(timeouts=run.quick())
    listed = _listed(run)
    if not run.is_ollama:
        return _model_elsewhere(run, listed)
    if listed is None:
        return failed(f"{run.model} is not listed by {run.base.rstrip('/')}/models{_served_text(run.served)}",
                      f"pull it: `localcodex pull {run.model}` (or `ollama pull {run.model}`)",
                      served=run.served)
    return _model_on_ollama(run, listed)


def _listed(run: ProbeRun) -> str | None:
    """The served id that is this model: Ollama's matching rules (`:latest` implied, any case) for Ollama,
    the exact id (or the same id in another case) elsewhere."""
    from localcodex.adapters.ollama import same_model

    if run.is_ollama:
        return next((m for m in run.served if same_model(m, run.model)), None)
    exact = next((m for m in run.served if m == run.model), None)
    return exact or next((m for m in run.served if m.lower() == run.model.lower()), None)


def _served_text(served: list[str], limit: int = 8) -> str:
    if not served:
        return " (it serves no model)"
    more = f", … ({len(served)} in all)" if len(served) > limit else ""
    return f" (it serves: {', '.join(served[:limit])}{more})"


def _model_elsewhere(run: ProbeRun, listed: str | None) -> Verdict:
    if listed is None:
        return warned(
            f"{run.model} is not listed by {run.base.rstrip('/')}/models{_served_text(run.served)}; "
            "some servers answer any name (llama-server), others reject it (vLLM): the probes below decide",
            "pass --model with a listed id", served=run.served, listed=False,
        )
    return passed(f"{listed} is listed by {run.base.rstrip('/')}/models (tool support is checked below)",
                  served=run.served, listed=True)


def _model_on_ollama(run: ProbeRun, listed: str) -> Verdict:
    assert run.ollama is not None
    installed = run.ollama.find(run.model)
    if installed is None:
        return failed(f"{run.model} is listed by /v1/models but not by /api/tags",
                      f"pull it again: `localcodex pull {run.model}`", served=run.served)
    details = run.ollama.show(run.model)
    data = {"id": listed, "size": installed.size, "capabilities": list(details.capabilities),
            "num_ctx": details.num_ctx, "trained_context": details.context_length,
            "parameter_size": details.parameter_size, "quantization": details.quantization_level}
    if not details.capabilities:
        return warned(f"{listed} is pulled, but this Ollama does not report capabilities: tool support is "
                      "tested by the round trip below", "upgrade Ollama to see capabilities", **data)
    if not details.supports_tools:
        caps = ", ".join(details.capabilities)
        return failed(f"{listed} cannot call tools (capabilities: {caps}): Codex does all its work through tools, "
                      "so it is useless with this model",
                      "pick a model with tools: `localcodex recommend` lists the ones that fit this machine", **data)
    facts = " ".join(x for x in (details.parameter_size, details.quantization_level) if x)
    what = f" ({facts})" if facts else ""
    return passed(f"{listed}{what} is pulled and can call tools (capabilities: {', '.join(details.capabilities)})",
                  **data)



# -- probe 9: auth and headers ----------------------------------------------------------------------------------


def probe_auth(run: ProbeRun) -> Verdict:
    var = run.req.env_key
    if run.key_error is not None:
        return failed(f"{run.key_error.message} Codex stops before sending anything, and so did this check",
                      run.key_error.hint, env_key=var, key_present=False)
    from localcodex.adapters.openai_compat import HOST_CHECK_FIX

    if run.host_refusals and not run.auth_rejections:
        return failed(f"the server refused the request by its Host header, not for a key: {run.host_refusals[0]}",
                      HOST_CHECK_FIX, env_key=var, key_present=bool(var), host_check=True)
    if run.auth_rejections:
        return failed(f"the server refused the request: {run.auth_rejections[0]}", _key_fix(run),
                      env_key=var, key_present=bool(var))
    if var:
        return passed(f"sent Authorization: Bearer with the key from ${var} (value hidden); the server accepted it",
                      env_key=var, key_present=True)
    return passed("no key sent (no --env-key), as Codex sends none without env_key; the server asked for none",
                  env_key=None, key_present=False)


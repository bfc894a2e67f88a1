"""The Ollama server, through the official `ollama` Python client: the only module that calls its native API.

Raw answers become typed, frozen records here, and every failure the client can raise (connection refused,
timeouts, `ResponseError` with an HTTP status or `-1` for an error line in the middle of a stream, httpx
errors that leak from streaming calls) becomes one `LocalcodexError` naming the host and the fix.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localcodex.domain.names import normalize_name, same_model  # noqa: F401 (re-exported for callers)
from localcodex.errors import (
    LocalcodexError,
    NotFound,
    OllamaUnavailable,
    ServerError,
    StepTimeout,
)
from localcodex.paths import OllamaHost, ollama_host

if TYPE_CHECKING:
    import ollama

START_HINT = (
    "start Ollama (`ollama serve`, or open the Ollama app); install it from https://ollama.com/download; "
    "or point --host / OLLAMA_HOST at the machine that runs it"
)



@dataclass(frozen=True)
class InstalledModel:
    name: str
    size: int
    digest: str
    modified_at: str
    family: str | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None


@dataclass(frozen=True)
class ModelDetails:
    """What `/api/show` says about one installed model, typed."""

    name: str
    architecture: str | None
    parameter_count: int | None
    context_length: int | None  # trained context (<arch>.context_length)
    num_ctx: int | None  # the model's own PARAMETER num_ctx, when it has one
    capabilities: tuple[str, ...]
    family: str | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None
    block_count: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None
    embedding_length: int | None = None
    key_length: int | None = None
    value_length: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    modelfile: str | None = None  # `ollama show --modelfile`; its FROM line names the weights blob
    parent_model: str | None = None  # the model it was created `from`, when the server says
    template: str | None = None

    @property
    def supports_tools(self) -> bool:
        return "tools" in self.capabilities


@dataclass(frozen=True)
class RunningModel:
    name: str
    size: int
    size_vram: int
    context_length: int | None
    digest: str = ""
    expires_at: str | None = None

    @property
    def gpu_fraction(self) -> float:
        return (self.size_vram / self.size) if self.size else 0.0


@dataclass(frozen=True)
class PullProgress:
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


def parse_parameters(text: str | None) -> dict[str, str]:
    """Parse `/api/show` `parameters` (one `name   value` line each; repeated names like `stop` join with \\n).

    >>> parse_parameters('num_ctx                        65536\\nstop                           "<|im_end|>"')
    {'num_ctx': '65536', 'stop': '"<|im_end|>"'}
    """
    result: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition(" ")
        if not key:
            continue
        value = value.strip()
        result[key] = f"{result[key]}\n{value}" if key in result else value
    return result


def _int(value: Any) -> int | None:
    """An integer, also from Go's float formatting of `/api/show` `parameters` ("1.048576e+06").

    >>> _int("1.048576e+06"), _int("8192"), _int(None), _int("x")
    (1048576, 8192, None, None)
    """
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _min_int(value: Any) -> int | None:
    """Some GGUF keys are per-layer arrays (e.g. head_count_kv on hybrid models): take the smallest non-zero."""
    if isinstance(value, (list, tuple)):
        values = [int(v) for v in value if isinstance(v, (int, float)) and v]
        return min(values) if values else None
    return _int(value)


@dataclass(frozen=True)
class Deadline:
    """A step's total time limit: a point in time (monotonic clock), the step's name and the limit given."""

    at: float
    step: str
    limit: float

    @classmethod
    def after(cls, seconds: float, step: str) -> Deadline:
        import time

        return cls(time.monotonic() + seconds, step, seconds)

    def remaining(self) -> float:
        import time

        return self.at - time.monotonic()

    def error(self) -> StepTimeout:
        return StepTimeout(f"{self.step}: not finished within its {self.limit:g} s limit",
                           "the server answers too slowly or not at all; check it (`ollama ps`), or raise --timeout")


def _deadline_transport(server: OllamaServer) -> Any:
    """An httpx transport that holds every request of `server` to its current deadline: each read waits at
    most the time left, and a stream that keeps trickling bytes is cut when the time is up (a per-read timeout
    alone never fires on a server that sends one byte a second)."""
    import httpx

    class _Stream(httpx.SyncByteStream):
        def __init__(self, inner: Any, deadline: Deadline) -> None:
            self.inner, self.deadline = inner, deadline

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.inner:
                if self.deadline.remaining() <= 0:
                    raise self.deadline.error()
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class _Transport(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            deadline = server.current_deadline
            if deadline is None:
                return super().handle_request(request)
            left = deadline.remaining()
            if left <= 0:
                raise deadline.error()
            limits = dict(request.extensions.get("timeout") or {})
            request.extensions["timeout"] = {k: min(v, left) if v else left
                                             for k, v in {"connect": None, "read": None, "write": None,
                                                          "pool": None, **limits}.items()}
            response = super().handle_request(request)
            return httpx.Response(response.status_code, headers=response.headers,
                                  stream=_Stream(response.stream, deadline), extensions=response.extensions)

    return _Transport(verify=shared_tls())


_TLS: list[Any] = []


def shared_tls() -> Any:
    """One TLS context for every Ollama client of this process: building one reads the CA bundle (~50 ms), and a
    run of setup makes several clients (detect, recommend, its own)."""
    if not _TLS:
        import httpx

        make = getattr(httpx, "create_ssl_context", None)
        _TLS.append(make() if make is not None else True)
    return _TLS[0]


class OllamaServer:
    """One Ollama server. Methods return typed records and raise only LocalcodexError.

    `timeout` bounds each read; `deadline(seconds, step)` bounds the total time of every call inside it
    (streams included), raising StepTimeout (exit 10) that names the step and the limit."""

    def __init__(self, host: OllamaHost | str | None = None, *, timeout: float | None = 30.0) -> None:
        self.host = host if isinstance(host, OllamaHost) else ollama_host(host)
        self.timeout = timeout
        self._client: ollama.Client | None = None
        self.current_deadline: Deadline | None = None

    @property
    def client(self) -> ollama.Client:
        if self._client is None:
            import ollama

            self._client = ollama.Client(host=self.host.native, timeout=self.timeout,
                                         transport=_deadline_transport(self))
        return self._client

    def with_timeout(self, seconds: float | None) -> OllamaServer:
        """Another client of the same server (its own connection) with another timeout."""
        return OllamaServer(self.host, timeout=seconds)

    @contextlib.contextmanager
    def deadline(self, seconds: float | None, step: str) -> Iterator[None]:
        """Every call in the block ends within `seconds` in total (None: no limit); an outer, earlier
        deadline still wins."""
        outer = self.current_deadline
        if seconds is None:
            yield
            return
        mine = Deadline.after(seconds, step)
        self.current_deadline = mine if outer is None or mine.at < outer.at else outer
        try:
            yield
        finally:
            self.current_deadline = outer

    def set_timeout(self, seconds: float | None) -> None:
        """Change the timeout of later calls, keeping the open connection (a benchmark times warm connections;
        a new one would add its set-up to the time to first token)."""
        import httpx

        self.timeout = seconds
        if self._client is not None:
            # ollama.Client keeps its httpx.Client in `_client` (all releases so far); httpx lets it be re-timed.
            self._client._client.timeout = httpx.Timeout(seconds)

    @contextlib.contextmanager
    def errors(self, what: str, model: str | None = None, *, stream: bool = False) -> Iterator[None]:
        """Translate every failure of the client into one LocalcodexError naming the host. A plain call (not
        `stream`) also ends within twice the per-read timeout in total, whatever the server does."""
        limit = None if stream or not self.timeout else 2 * self.timeout
        with self.deadline(limit, what), self._translated(what, model):
            yield

    @contextlib.contextmanager
    def _translated(self, what: str, model: str | None) -> Iterator[None]:
        import httpx
        import ollama

        url = self.host.native
        try:
            yield
        except LocalcodexError:
            raise
        except ollama.ResponseError as exc:
            message = str(exc.error).strip()
            if exc.status_code == 404 and model:
                raise NotFound(
                    f"model {model!r} is not on the Ollama server at {url} ({message})",
                    f"pull it first: `localcodex pull {model}` (or `ollama pull {model}`)",
                ) from exc
            where = "in the middle of the answer" if exc.status_code == -1 else f"HTTP {exc.status_code}"
            raise ServerError(f"{what} failed: Ollama at {url} answered {where}: {message}") from exc
        except httpx.TimeoutException as exc:
            deadline = self.current_deadline
            if deadline is not None and deadline.remaining() <= 0.05:
                raise deadline.error() from exc
            raise StepTimeout(
                f"{what}: Ollama at {url} did not answer within {self.timeout:g} s",
                "check that the server is not stuck (`ollama ps`), or retry",
            ) from exc
        except (ConnectionError, httpx.ConnectError) as exc:
            raise OllamaUnavailable(f"cannot reach Ollama at {url}", START_HINT) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise ServerError(f"{what}: the connection to Ollama at {url} broke: {exc}", "retry") from exc
        except httpx.HTTPError as exc:
            raise ServerError(f"{what}: talking to Ollama at {url} failed: {exc}") from exc
        except ValueError as exc:  # malformed JSON (json.JSONDecodeError) or a reply the client cannot parse
            raise ServerError(f"{what}: Ollama at {url} sent an answer that cannot be read: {exc}") from exc

    # -- plain calls -----------------------------------------------------------------------------------------

    def version(self) -> str:
        """The server version (`/api/version`). Old servers without the route report '0.0.0'."""
        import ollama

        with self.errors("asking the version"):
            try:
                reply = self.client._request_raw("GET", "/api/version")
            except ollama.ResponseError as exc:
                if exc.status_code == 404:
                    return "0.0.0"
                raise
            return str(reply.json().get("version", "0.0.0"))

    def list(self) -> builtins.list[InstalledModel]:
        with self.errors("listing models"):
            reply = self.client.list()
        return [
            InstalledModel(
                name=m.model or "",
                size=int(m.size or 0),
                digest=m.digest or "",
                modified_at=m.modified_at.isoformat() if m.modified_at else "",
                family=m.details.family if m.details else None,
                parameter_size=m.details.parameter_size if m.details else None,
                quantization_level=m.details.quantization_level if m.details else None,
            )
            for m in reply.models
        ]

    def find(self, model: str) -> InstalledModel | None:
        """The installed model with this name (Ollama's matching rules), or None."""
        return next((m for m in self.list() if same_model(m.name, model)), None)

    def show(self, model: str) -> ModelDetails:
        with self.errors(f"reading model {model}", model=model):
            reply = self.client.show(model)
        info: dict[str, Any] = dict(reply.modelinfo or {})
        arch = info.get("general.architecture")
        params = parse_parameters(reply.parameters)

        def key(name: str) -> Any:
            return info.get(f"{arch}.{name}") if arch else None

        details = reply.details
        return ModelDetails(
            name=model,
            architecture=arch,
            parameter_count=_int(info.get("general.parameter_count")),
            context_length=_int(key("context_length")),
            num_ctx=_int(params.get("num_ctx")),
            capabilities=tuple(str(c) for c in (reply.capabilities or ())),
            family=details.family if details else None,
            parameter_size=details.parameter_size if details else None,
            quantization_level=details.quantization_level if details else None,
            block_count=_int(key("block_count")),
            head_count=_min_int(key("attention.head_count")),
            head_count_kv=_min_int(key("attention.head_count_kv")),
            embedding_length=_int(key("embedding_length")),
            key_length=_int(key("attention.key_length")),
            value_length=_int(key("attention.value_length")),
            parameters=params,
            model_info=info,
            modelfile=reply.modelfile,
            parent_model=(details.parent_model or None) if details else None,
            template=reply.template,
        )

    def ps(self) -> builtins.list[RunningModel]:
        with self.errors("listing loaded models"):
            reply = self.client.ps()
        return [
            RunningModel(
                name=m.model or m.name or "",
                size=int(m.size or 0),
                size_vram=int(m.size_vram or 0),
                context_length=_int(getattr(m, "context_length", None)),
                digest=m.digest or "",
                expires_at=m.expires_at.isoformat() if m.expires_at else None,
            )
            for m in reply.models
        ]

    def delete(self, model: str) -> None:
        with self.errors(f"deleting {model}", model=model):
            self.client.delete(model)

    def copy(self, source: str, destination: str) -> None:
        with self.errors(f"copying {source}", model=source):
            self.client.copy(source, destination)

    # -- streamed calls --------------------------------------------------------------------------------------

    def pull(self, model: str, *, insecure: bool = False) -> Iterator[PullProgress]:
        """Stream `/api/pull` progress. An `{"error": …}` line mid-stream raises ServerError with its reason."""
        with self.errors(f"pulling {model}", stream=True):
            for part in self.client.pull(model, insecure=insecure, stream=True):
                yield PullProgress(
                    status=part.status or "",
                    digest=part.digest,
                    total=_int(part.total),
                    completed=_int(part.completed),
                )

    def create(self, model: str, **kwargs: Any) -> Iterator[str]:
        """Stream `/api/create` statuses (`from_`, `files`, `parameters`, `template`, ... as the client takes)."""
        with self.errors(f"creating {model}", stream=True):
            for part in self.client.create(model, stream=True, **kwargs):
                yield part.status or ""

    def create_blob(self, path: Any) -> str:
        with self.errors(f"uploading {path}", stream=True):
            return self.client.create_blob(path)

    def create_request(self, body: dict[str, Any]) -> Iterator[str]:
        """Stream `/api/create` with a raw request body, for fields the client does not model
        (`renderer`, `parser`, `requires`, `info`) as well as the usual ones."""
        from ollama import ProgressResponse

        model = str(body.get("model", ""))
        with self.errors(f"creating {model}", stream=True):
            for part in self.client._request(ProgressResponse, "POST", "/api/create", json=body, stream=True):
                yield part.status or ""

    def has_blob(self, digest: str) -> bool:
        """`HEAD /api/blobs/<digest>`: is this blob already on the server (so an upload can be skipped)?"""
        import ollama

        with self.errors(f"looking for blob {digest[:19]}"):
            try:
                self.client._request_raw("HEAD", f"/api/blobs/{digest}")
            except ollama.ResponseError as exc:
                if exc.status_code == 404:
                    return False
                raise
        return True

    def upload_blob(self, digest: str, chunks: Iterable[bytes], size: int | None = None) -> None:
        """`POST /api/blobs/<digest>` streaming `chunks` (the server checks the digest; a mismatch is a 400).

        Takes an iterable of chunks rather than a path so callers can upload straight out of a bundle and
        report progress; the client's own `create_blob` hashes the whole file again before sending it.
        """
        headers = {"content-length": str(size)} if size is not None else None
        with self.errors(f"uploading blob {digest[:19]}", stream=True):
            self.client._request_raw(
                "POST", f"/api/blobs/{digest}", content=self._held(chunks), headers=headers, timeout=self.timeout
            )

    def _held(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """A request body held to the current deadline: a server that reads slowly, each write in time, is
        still cut off when the step's total time is up."""
        for chunk in chunks:
            deadline = self.current_deadline
            if deadline is not None and deadline.remaining() <= 0:
                raise deadline.error()
            yield chunk

    def generate(self, model: str, prompt: str, **kwargs: Any) -> Any:
        """Non-streamed `/api/generate`; returns the client's GenerateResponse (counters in ns)."""
        with self.errors(f"asking {model}", model=model):
            return self.client.generate(model=model, prompt=prompt, stream=False, **kwargs)

    def unload(self, model: str) -> None:
        """Free the memory `model` holds (an empty request with keep_alive 0, as `ollama stop` sends)."""
        with self.errors(f"unloading {model}", model=model):
            self.client.generate(model=model, prompt="", keep_alive=0, stream=False)

    def generate_stream(self, model: str, prompt: str, **kwargs: Any) -> Iterator[Any]:
        with self.errors(f"asking {model}", model=model, stream=True):
            yield from self.client.generate(model=model, prompt=prompt, stream=True, **kwargs)

    def chat_stream(self, model: str, messages: builtins.list[dict[str, Any]], **kwargs: Any) -> Iterator[Any]:
        with self.errors(f"asking {model}", model=model, stream=True):
            yield from self.client.chat(model=model, messages=messages, stream=True, **kwargs)

"""The ``hooks.run`` activity: one attempt of one lifecycle hook (see
:mod:`workflows.hooks_spec`).

* HTTP: the URL must pass :func:`code_foundation.targets.target_problem` (the
  ``allowed_targets`` setting); secret headers are resolved here from their references
  and never returned; the body template gets the run's fields (``${field}``); the
  hook passes when the status, JSON path and regex conditions all hold.
* Command: ``argv`` is executed directly (``asyncio.create_subprocess_exec``, never a
  shell) with ``PATH``/``HOME``, the hook's env, its resolved secret env and the run's
  fields as ``CODE_HOOK_<FIELD>``; it passes on the expected exit code; a timeout
  kills its process group.

A hook that fails, times out or cannot be reached is an *answer*
(``HookCallResult(passed=False)``), never an activity error: the workflow decides
(retries, gate polling, compensation). Only a refused target or a bad secret reference
is reported with ``status="error"`` and the reason. Excerpts are at most 512 characters
and have every resolved secret value masked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import string
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from temporalio import activity

from activities.secrets import SecretError, SecretSource
from activities.settings import Settings
from code_foundation import targets
from code_foundation.names import A
from workflows.hooks_spec import (
    EXCERPT_LIMIT,
    MISSING,
    CommandHook,
    HookCallInput,
    HookCallResult,
    HookContext,
    HttpHook,
    excerpt,
    lookup,
)

_BODY_METHODS = ("POST", "PUT", "PATCH")


def split_secret(value: str) -> tuple[str, str]:
    """``'Bearer env:TOKEN'`` -> ``('Bearer ', 'env:TOKEN')``: the reference is the last word."""
    head, sep, ref = value.rpartition(" ")
    return (head + sep, ref) if sep else ("", value)


def render(template: str, ctx: HookContext) -> str:
    """The body template with ``${field}`` replaced (unknown placeholders stay as written)."""
    return string.Template(template).safe_substitute(ctx.fields())


def mask(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "********")
    return text


def judge_http(hook: HttpHook, code: int, body: str) -> tuple[bool, str]:
    """Whether a response passes ``hook.success``, and why not."""
    ok = hook.success
    if ok.status and code not in ok.status:
        return False, f"status {code} is not one of {ok.status}"
    if not ok.status and not 200 <= code < 300:
        return False, f"status {code} is not 2xx"
    if ok.regex is not None and not re.search(ok.regex, body):
        return False, f"body does not match {ok.regex!r}"
    if ok.json_path is not None:
        try:
            doc = json.loads(body)
        except ValueError:
            return False, f"body is not JSON (json_path {ok.json_path})"
        got = lookup(doc, ok.json_path)
        if got is MISSING:
            return False, f"{ok.json_path} not in the response"
        if ok.equals is not None and got != ok.equals:
            return False, f"{ok.json_path} is {got!r}, expected {ok.equals!r}"
        if ok.equals is None and not got:
            return False, f"{ok.json_path} is {got!r} (not truthy)"
    return True, f"status {code}"


class HookActivities:
    def __init__(
        self, settings: Settings, secrets: Callable[[], SecretSource] | None = None
    ) -> None:
        self.settings = settings
        self._secrets = secrets

    def _resolver(self) -> SecretSource:
        if self._secrets is not None:
            return self._secrets()
        from activities.secrets import SecretResolver

        return SecretResolver.from_settings(self.settings)

    async def _resolve(self, refs: dict[str, str]) -> dict[str, str]:
        if not refs:
            return {}
        values, _versions = await self._resolver().aresolve(refs)
        return values

    @activity.defn(name=A.HOOK_RUN)
    async def run(self, inp: HookCallInput) -> HookCallResult:
        t0 = time.monotonic()
        try:
            if inp.hook.http is not None:
                res = await self._http(inp.hook.http, inp, t0)
            elif inp.hook.command is not None:
                res = await self._command(inp.hook.command, inp, t0)
            else:  # the spec refuses a hook without one of them
                res = HookCallResult(passed=False, status="error", message="no http or command")
        except SecretError as exc:
            res = HookCallResult(passed=False, status="error", message=str(exc)[:EXCERPT_LIMIT])
        res.duration_ms = round((time.monotonic() - t0) * 1000, 1)
        activity.logger.info(
            "hook %s (%s) %s: %s", inp.hook.name, inp.context.point, res.status, res.message
        )
        return res

    # ------------------------------------------------------------ http
    async def _http(self, hook: HttpHook, inp: HookCallInput, t0: float) -> HookCallResult:
        problem = targets.target_problem(hook.url, what="hook")
        if problem:
            return HookCallResult(passed=False, status="error", message=problem)
        split = {h: split_secret(v) for h, v in hook.secret_headers.items()}
        values = await self._resolve({h: ref for h, (_p, ref) in split.items()})
        headers = dict(hook.headers)
        headers.update({h: prefix + values[h] for h, (prefix, _r) in split.items()})
        secrets = list(values.values())
        content: bytes | None = None
        if hook.body is not None:
            content = render(hook.body, inp.context).encode()
        elif hook.method in _BODY_METHODS:
            content = json.dumps(inp.context.model_dump(mode="json")).encode()
            headers.setdefault("Content-Type", "application/json")
        timeout = inp.hook.timeout.total_seconds()
        try:
            async with httpx.AsyncClient(timeout=timeout, verify=self.settings.tls_verify()) as c:
                r = await c.request(hook.method, hook.url, content=content, headers=headers)
        except httpx.TimeoutException:
            return HookCallResult(
                passed=False, status="failed", message=f"timed out after {timeout}s"
            )
        except httpx.HTTPError as exc:
            msg = mask(f"{type(exc).__name__}: {exc}", secrets)
            return HookCallResult(passed=False, status="failed", message=msg[:EXCERPT_LIMIT])
        body = r.text
        passed, why = judge_http(hook, r.status_code, body)
        return HookCallResult(
            passed=passed,
            status="passed" if passed else "failed",
            code=r.status_code,
            excerpt=excerpt(mask(body, secrets)),
            message=why,
        )

    # ------------------------------------------------------------ command
    async def _command(self, cmd: CommandHook, inp: HookCallInput, t0: float) -> HookCallResult:
        secret_env = await self._resolve(cmd.secret_env)
        env: dict[str, str] = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        env.update({f"CODE_HOOK_{k.upper()}": v for k, v in inp.context.fields().items()})
        env.update(cmd.env)
        env.update(secret_env)
        argv = [sys.executable if a == "{python}" else a for a in cmd.argv]
        timeout = inp.hook.timeout.total_seconds()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cmd.workdir or None,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return HookCallResult(
                passed=False, status="failed", message=f"cannot run {argv[0]!r}: {exc.strerror}"
            )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            _kill(proc)
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return HookCallResult(
                passed=False, status="failed", message=f"timed out after {timeout}s"
            )
        text = mask(out.decode(errors="replace"), list(secret_env.values()))
        code = proc.returncode
        passed = code == cmd.exit_code
        return HookCallResult(
            passed=passed,
            status="passed" if passed else "failed",
            code=code,
            excerpt=_tail(text),
            message=f"exit code {code}" + ("" if passed else f", expected {cmd.exit_code}"),
        )


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(text: str) -> str:
    """The last :data:`EXCERPT_LIMIT` characters (a command's verdict is usually at the end)."""
    return text if len(text) <= EXCERPT_LIMIT else "…" + text[-(EXCERPT_LIMIT - 1) :]


def hook_activities(settings: Settings) -> list[Callable[..., Any]]:
    return [HookActivities(settings).run]

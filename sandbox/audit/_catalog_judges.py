"""The pieces every threat's probes are built from: specs, readings of the evidence, and the repeated shapes.

Most probes are one of a few shapes, and each shape is written here once, so a probe reads as data:

* `real_and_control`: a `{pid}/real` spec that must be refused and a `{pid}/control` spec (inside, or in
  the control runner outside the sandbox) that shows the same path works where it is allowed;
* `refused_by_proxy`: a CONNECT the proxy must refuse with a 403 *and* the matching decision in its own
  log (`toBlockDomain`-style), with the same request allowed through the control proxy, another probe's
  allowed request, or the allowed path (`egress.allowlisted`) as its control;
* `reading`: one spec inside the sandbox judged on its result alone (a limit read back, a bomb's end);
* `mirrored`: the same spec inside and in the control runner outside, judged on both results: the reading
  outside is the control that shows what the sandbox takes away;
* `rereading`: no spec of its own, another probe's result judged again for another guarantee (one
  reading of the mounts or of /proc serves two rows of the report);
* `judge`: the judge of such a pair. It reads both results before looking at either, so a missing result
  is named in the failure the same way whichever side is missing.

The `Assess` functions (`refused_as`, `answered_nonce`, `no_route`, `none_connected`, `connected_from`)
turn one result into `(ok, observed)`; the same function serves as the probe's check and as its control.
`tried` words a control's one attempt (it worked, or its error) the same way for every probe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site, Spec
from ._policy import UPSTREAM

__all__ = [
    "ALLOWED",
    "Assess",
    "Where",
    "allowed_path",
    "answered_nonce",
    "connected_from",
    "judge",
    "mirrored",
    "no_route",
    "none_connected",
    "reading",
    "real_and_control",
    "refused_as",
    "refused_by_proxy",
    "rereading",
    "through_both_proxies",
    "tried",
]

Where = Literal["inside", "outside"]
"""Which batch a result comes from: the Expert's container, or the control runner outside the sandbox."""

Assess = Callable[[Evidence, Result], tuple[bool, str]]
"""One result judged on its own: whether it shows what was expected, and what was observed, in words."""

ALLOWED = "egress.allowlisted/connect"
"""The allowed CONNECT (`egress.allowlisted`): the control of every proxy refusal that has none of its own."""


# ---------------------------------------------------------------------------------------------------------
# Specs and readings
# ---------------------------------------------------------------------------------------------------------


def _spec(pid: str, part: str, kind: str, **params: Any) -> Spec:
    return {"id": f"{pid}/{part}", "kind": kind, **params}


def through_both_proxies(site: Site, pid: str, kind: str, **params: Any) -> tuple[Spec, Spec]:
    """The same probe twice: through the sandbox's proxy ("real") and the control proxy ("control")."""
    return (
        _spec(pid, "real", kind, proxy=site.proxy, **params),
        _spec(pid, "control", kind, proxy=site.control_proxy, **params),
    )


def _tls(site: Site, sni: str | None, *, verify: bool = True, host: str | None = None, pid: str = "") -> Spec:
    return {
        "sni": sni,
        "verify": verify,
        "cadata": site.cadata,
        "hostHeader": host or sni or UPSTREAM,
        "path": f"/audit/{pid}",
    }


def _r(ev: Evidence, key: str, where: str = "inside") -> Result:
    batch = ev.inside if where == "inside" else ev.control
    if key not in batch:
        raise KeyError(f"no result for {key} ({where})")
    return batch[key]


def _upstream_answered(r: Result, site_nonce: str) -> bool:
    http = r.get("http") or {}
    return http.get("status") == 200 and f"nonce={site_nonce}" in (http.get("body") or "")


def _status_text(r: Result) -> str:
    if r.get("status") is not None:
        text = str(r["status"])
        http = r.get("http") or {}
        tls = r.get("tls") or {}
        if tls and not tls.get("ok"):
            text += f", TLS failed ({tls.get('error')})"
        elif http.get("status") is not None:
            text += f", then HTTP {http['status']}"
        return text
    return r.get("error") or "no answer"


def _errno_name(text: str | None) -> str:
    return (text or "").split(":", 1)[0]


def _logged(
    ev: Evidence, action: str, domain: str | None, port: int | None, code: str | None, proxy: str = "real"
) -> bool:
    log = ev.proxy_log if proxy == "real" else ev.control_proxy_log
    for a in log:
        if a.action != action:
            continue
        if domain is not None and a.domain.lower().rstrip(".") != domain.lower().rstrip("."):
            continue
        if port is not None and a.port != port:
            continue
        if code is not None and a.code != code:
            continue
        return True
    return False


def _refusal(ev: Evidence, r: Result, domain: str | None, port: int, code: str) -> tuple[bool, str]:
    """A 403 the client saw AND the matching decision in the proxy's log."""
    seen = r.get("status") == 403
    logged = _logged(ev, "blocked", domain, port, code)
    text = f"{_status_text(r)}; proxy log: " + (f"blocked ({code})" if logged else "no matching refusal")
    return seen and logged, text


def _control_nonce(site: Site, r: Result, what: str) -> tuple[bool, str]:
    ok = _upstream_answered(r, site.nonce)
    return ok, (f"{what}: 200 from the audit upstream" if ok else f"{what}: {_status_text(r)}")


def _denied_errno(r: Result) -> bool:
    return _errno_name(r.get("error")) in ("EPERM", "EACCES")


# ---------------------------------------------------------------------------------------------------------
# Assessments of one result
# ---------------------------------------------------------------------------------------------------------


def refused_as(domain: str | None, port: int, code: str) -> Assess:
    """The proxy refused: a 403 the client saw, logged as `code` for `domain:port`."""
    return lambda ev, r: _refusal(ev, r, domain, port, code)


def answered_nonce(site: Site, what: str) -> Assess:
    """The audit's upstream answered 200 with this run's nonce (so the request really got there)."""
    return lambda ev, r: _control_nonce(site, r, what)


def no_route(ev: Evidence, r: Result) -> tuple[bool, str]:
    """A single direct connect got nowhere."""
    return not r["connected"], "connected!" if r["connected"] else f"no route ({_errno_name(r.get('error'))})"


def none_connected(label: str = "connected", none: Callable[[Result], str] | None = None) -> Assess:
    """None of a `tcp_many` probe's targets connected; `none` words the clean result (default: a count)."""

    def assess(ev: Evidence, r: Result) -> tuple[bool, str]:
        if r["connected"]:
            return False, f"{label}: " + ", ".join(r["connected"])
        return True, none(r) if none else f"none of {r['count']} connected"

    return assess


def connected_from(what: str) -> Assess:
    """The control's plain connect got through (`what` says from where, to what)."""
    return lambda ev, c: (
        bool(c.get("connected")),
        what + ("connected" if c.get("connected") else str(c.get("error"))),
    )


def tried(r: Result, what: str, *, worked: str = "yes") -> tuple[bool, str]:
    """A control's one attempt (`{"ok": ..., "error": ...}`) as `(ok, observed)`: `what`, then `worked` or
    the error. Every control that is a single attempt reads the same in the report, whatever it tried."""
    return bool(r.get("ok")), f"{what}: " + (worked if r.get("ok") else str(r.get("error")))


def allowed_path(site: Site) -> Assess:
    """The allowed CONNECT (`ALLOWED`) as a control: the upstream answered through this proxy."""
    return answered_nonce(site, f"{UPSTREAM}:443 through the same proxy")


# ---------------------------------------------------------------------------------------------------------
# The shapes
# ---------------------------------------------------------------------------------------------------------


def judge(
    real: str, assess: Assess, control: str, check: Assess, *, where: Where = "inside"
) -> Callable[[Evidence], Judgement]:
    """The judge of one result to assess (`real`) and one control result (`control`, in `where`)."""

    def judged(ev: Evidence) -> Judgement:
        r, c = _r(ev, real), _r(ev, control, where)
        return Judgement(*assess(ev, r), *check(ev, c))

    return judged


def real_and_control(
    pid: str,
    title: str,
    expected: str,
    control: str,
    *,
    real: Spec,
    ctrl: Spec,
    assess: Assess,
    check: Assess,
    where: Where = "inside",
) -> AuditProbe:
    """`real` (a spec without its id) must show `assess`; `ctrl`, run in `where`, must pass `check`."""
    real_spec, ctrl_spec = _spec(pid, "real", **real), _spec(pid, "control", **ctrl)
    inside: tuple[Spec, ...] = (real_spec, ctrl_spec) if where == "inside" else (real_spec,)
    outside: tuple[Spec, ...] = (ctrl_spec,) if where == "outside" else ()
    return AuditProbe(
        pid,
        title,
        expected,
        control,
        judge(f"{pid}/real", assess, f"{pid}/control", check, where=where),
        inside=inside,
        outside=outside,
    )


def refused_by_proxy(
    site: Site,
    pid: str,
    title: str,
    *,
    name: str,
    code: str,
    expected: str,
    control: str,
    control_proxy: str | None = None,
    control_ref: tuple[str, str] | None = None,
    tls: bool = False,
) -> AuditProbe:
    """A CONNECT to `name`:443 that the proxy refuses (403, logged as `code`).

    The control is, by what is given: `control_proxy`, the same CONNECT through the control proxy, where it
    is allowed (the words say why); `control_ref`, (spec id, words) of another probe's request the upstream
    must have answered; or else the allowed path (`egress.allowlisted`). `tls` sends a verified ClientHello
    for `name` after the CONNECT, so a tunnel that opens is also seen to reach the upstream.
    """
    params: dict[str, Any] = {"target": f"{name}:443"}
    if tls:
        params["tls"] = _tls(site, name, pid=pid)
    inside: tuple[Spec, ...]
    if control_proxy is not None:
        inside = through_both_proxies(site, pid, "proxy_connect", **params)
        ref, check = f"{pid}/control", answered_nonce(site, control_proxy)
    else:
        inside = (_spec(pid, "real", "proxy_connect", proxy=site.proxy, **params),)
        if control_ref is not None:
            ref, check = control_ref[0], answered_nonce(site, control_ref[1])
        else:
            ref, check = ALLOWED, allowed_path(site)
    return AuditProbe(
        pid,
        title,
        expected,
        control,
        judge(f"{pid}/real", refused_as(name, 443, code), ref, check),
        inside=inside,
    )


def reading(
    pid: str,
    title: str,
    expected: str,
    control: str,
    *,
    part: str,
    kind: str,
    verdict: Callable[[Result], Judgement],
    **params: Any,
) -> AuditProbe:
    """One spec (`{pid}/{part}`) run inside the sandbox; `verdict` judges its result alone."""
    key = f"{pid}/{part}"
    return AuditProbe(
        pid,
        title,
        expected,
        control,
        lambda ev: verdict(_r(ev, key)),
        inside=(_spec(pid, part, kind, **params),),
    )


def mirrored(
    pid: str,
    title: str,
    expected: str,
    control: str,
    *,
    part: str,
    kind: str,
    verdict: Callable[[Result, Result], Judgement],
    **params: Any,
) -> AuditProbe:
    """The same spec run inside the sandbox and in the control runner outside it; `verdict` gets both
    results (inside, outside): what reads as empty inside must read as present outside, or the probe could
    not have seen the difference."""
    key = f"{pid}/{part}"
    spec = _spec(pid, part, kind, **params)
    return AuditProbe(
        pid,
        title,
        expected,
        control,
        lambda ev: verdict(_r(ev, key), _r(ev, key, "outside")),
        inside=(spec,),
        outside=(spec,),
    )


def rereading(
    pid: str,
    title: str,
    expected: str,
    control: str,
    *,
    of: str,
    verdict: Callable[[Result], Judgement],
) -> AuditProbe:
    """A probe with no spec of its own: `verdict` judges the result `of` (another probe's spec id) again.

    One reading (the mount table, a scan of /proc) can show two guarantees; running it once keeps both rows
    of the report about the same observation, and the batch shorter.
    """
    return AuditProbe(pid, title, expected, control, lambda ev: verdict(_r(ev, of)))

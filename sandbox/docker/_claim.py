"""A run's side of standbys: which standby would match it, claiming one, and handing it the run.

`sandbox warm` makes standbys (`_warm`); the records and their pool are `_standby`'s. A run claims a live
standby of exactly its sandbox (the key covers everything a fresh sandbox would be built from, `key_of`),
adopts its objects into the run's session, so teardown removes them like its own, and sends it the same
stdin line a fresh container gets.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from sandbox.options import RunOptions
from sandbox.plan import SandboxPlan

from ._backend import AttachedStream
from ._session import SandboxSession
from ._settings import DockerSettings, Hidden
from ._standby import StandbyRecord, remove_standby, standby_key

__all__ = ["claim_standby", "key_of", "take_over"]


def key_of(
    options: RunOptions, plan: SandboxPlan, *, ca: bytes | None, uid: int, gid: int, hidden: Hidden
) -> str:
    """The standby key of the sandbox a run with these inputs builds (`_standby.standby_key`)."""
    return standby_key(
        plan=plan,
        config=options.config,
        workspace=options.workspace,
        uid=uid,
        gid=gid,
        hidden=hidden.key(),
        ca=ca,
    )


def claim_standby(
    session: SandboxSession,
    key: str,
    *,
    settings: DockerSettings,
    options: RunOptions,
    connecting: Future[None],
    diag: Callable[[str], None],
) -> StandbyRecord | None:
    """A live standby of `key`, now `session`'s; None (build a fresh sandbox) when there is none.

    Only called when `settings.use_standby` (the caller skips computing the key otherwise).

    Expired standbys found on the way, and a claimed one whose runtime has quit (idle timeout, killed), are
    removed in the background; the session's teardown waits for that.
    """
    record, expired = settings.pool(options.env).claim(key)
    if record is None and not expired:
        return None
    connecting.result()
    backend = session.backend
    for old in expired:
        session.background(session.pool.submit(remove_standby, backend, old))
    if record is None:
        return None
    # Ours from here on: a signal now must still tear it down.
    session.adopt(record.containers, record.networks, Path(record.run_dir))
    states = list(session.pool.map(backend.container_state, record.containers.values()))
    if all(state is not None and state.running for state in states):
        if options.verbose:
            diag(f"sandbox: using standby sandbox {record.id} (made by `sandbox warm`)")
        return record
    session.disown()
    session.background(session.pool.submit(remove_standby, backend, record))
    return None


def take_over(
    session: SandboxSession,
    record: StandbyRecord,
    line: bytes,
    *,
    on_proxy: Callable[[AttachedStream], None],
) -> tuple[AttachedStream, list[str]]:
    """Attach to a claimed standby and hand it the run's stdin line; its stream and env names.

    The proxy's stream is attached with its log so far (`on_proxy` gets it), so the run's access events
    include what the standby's start-up logged.
    """
    backend = session.backend
    attaching = session.pool.submit(backend.attach, record.containers["proxy"], stdin=False, logs=True)
    stream = session.add_stream(backend.attach(record.containers["expert"], stdin=True))
    on_proxy(session.add_stream(attaching.result()))
    stream.send(line)
    return stream, list(record.env_names)

"""Masters kept in the store under a name (the `saved_master` table): `w2s master train --name`, `list`,
`export`, `import`, and `--master NAME|DIR` wherever a master is used. A run directory stays the
export/import format; a name is the store's handle on one."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from sqlmodel import Session, select

from w2s.masters.master import Master
from w2s.masters.runs import config_of, is_run_dir
from w2s.store import SavedMaster, session_scope


class UnknownMaster(ValueError):
    """A `--master` that is neither a run directory nor a name in the store; the message names those there."""


def default_name(master: Master) -> str:
    return f"{master.config.kind}-{master.run_id}"


def save_master(
    session: Session, master: Master, name: str | None = None, producer: dict | None = None
) -> SavedMaster:
    """Keep `master` under `name` (default KIND-RUN_ID). Saving the same master under its name again is a
    no-op; a name that holds another master is an error."""
    name = name or default_name(master)
    row = session.exec(select(SavedMaster).where(SavedMaster.name == name)).first()
    if row is not None:
        if row.run_id == master.run_id:
            return row
        raise ValueError(
            f"a master named {name!r} is already saved (run {row.run_id}, not {master.run_id}): "
            f"choose another --name"
        )
    row = SavedMaster(
        name=name,
        kind=master.config.kind,
        run_id=master.run_id,
        config=asdict(master.config),
        state=master.state(),
        producer=producer or {},
    )
    session.add(row)
    session.flush()
    return row


def saved_masters(session: Session) -> list[SavedMaster]:
    """Every saved master, by name."""
    return list(session.exec(select(SavedMaster).order_by(SavedMaster.name)))


def master_of(row: SavedMaster) -> Master:
    return Master.from_state(config_of(row.config), row.state)


def load_saved(session: Session, name: str) -> Master:
    row = session.exec(select(SavedMaster).where(SavedMaster.name == name)).first()
    if row is None:
        names = [r.name for r in saved_masters(session)]
        there = f"the saved masters are {', '.join(names)}" if names else "no master is saved in this store"
        raise UnknownMaster(
            f"no master named {name!r} and no run directory there: {there} "
            f"(`w2s master list`; `w2s master import DIR` brings in a run directory)"
        )
    return master_of(row)


def resolve_master(ref: str | Path, url: str | None = None, session: Session | None = None) -> Master:
    """The master `ref` names: a run directory (when one is there), else a name saved in the store."""
    if is_run_dir(ref):
        return Master.load(ref)
    if session is not None:
        return load_saved(session, str(ref))
    with session_scope(url) as s:
        return load_saved(s, str(ref))


def import_run(session: Session, run_dir: str | Path, name: str | None = None) -> SavedMaster:
    """Save the master of a run directory (its producer: the directory it came from)."""
    master = Master.load(run_dir)
    return save_master(session, master, name, producer={"imported_from": str(Path(run_dir).resolve())})


def export_run(session: Session, name: str, out: str | Path) -> Master:
    """Write the saved master `name` as a run directory `out` (which must be new or empty)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty: choose a new run directory")
    master = load_saved(session, name)
    master.save(out)
    return master

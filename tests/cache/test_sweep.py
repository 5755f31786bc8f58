"""What `objfs gc` offers to remove, on the reference backend: ages respected, owed data never."""

from __future__ import annotations

import uuid
from pathlib import Path

from objfs.blobs.gc import CONFLICT, STAGING, UPLOAD, Sweep
from objfs.cache.journal import Journal
from objfs.fs.conflicts import conflict_key, conflict_time
from objfs.storage.memory import MemoryStorage


def _sweep(tmp_path: Path) -> tuple[MemoryStorage, Sweep]:
    storage = MemoryStorage(f"sweep-{uuid.uuid4().hex}")
    return storage, Sweep(storage, "", str(tmp_path / "cache"))


def test_uploads_are_offered_only_past_the_age_limit_unless_journalled(tmp_path: Path) -> None:
    storage, sweep = _sweep(tmp_path)
    stranger = storage.create_multipart("someone/else.bin")
    ours = storage.create_multipart("ours.bin")
    sweep.journal.upload_started("ours.bin", ours)

    young = sweep.leftovers(older_than=3600, every_upload=True)
    assert [(x.kind, x.upload_id) for x in young] == [(UPLOAD, ours)]  # this cache's, whatever its age
    everything = sweep.leftovers(older_than=0, every_upload=True)
    assert {x.upload_id for x in everything} == {ours, stranger}
    assert {x.upload_id for x in sweep.leftovers(older_than=0, every_upload=False)} == {ours}

    for leftover in everything:
        sweep.remove(leftover)
    assert storage.list_multipart() == []
    assert sweep.journal.unfinished_uploads() == []
    sweep.close()


def test_staged_bytes_owed_to_the_bucket_are_never_offered(tmp_path: Path) -> None:
    _, sweep = _sweep(tmp_path)
    staging = tmp_path / "cache" / "staging"
    staging.mkdir(parents=True)
    (staging / "owed").write_bytes(b"a close that has not landed yet")
    (staging / "orphan").write_bytes(b"nobody refers to me")
    journal = Journal(sweep.config.journal_path)
    journal.staged(str(staging / "owed"), "k", None)
    journal.close()

    found = sweep.leftovers(older_than=0, every_upload=False)
    assert [(x.kind, Path(x.name).name) for x in found] == [(STAGING, "orphan")]
    sweep.close()


def test_conflict_copies_carry_their_age_in_their_name(tmp_path: Path) -> None:
    storage, sweep = _sweep(tmp_path)
    old = conflict_key("notes.txt", when=0)
    storage.write(old, b"then")
    storage.write(conflict_key("notes.txt"), b"now")
    assert conflict_time(old) == 0 and conflict_time("notes.txt") is None
    found = sweep.leftovers(older_than=86400, every_upload=False)
    assert [(x.kind, x.name) for x in found] == [(CONFLICT, old)]
    sweep.close()

"""medswin.files: atomic writes leave the old file or the new one, never a half or a stray temporary;
locks are held across processes, refused at once when asked not to wait, and freed by the kernel when
their holder dies; and every module imports where ``fcntl`` does not exist (Windows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medswin.errors import ImageWriteError
from medswin.files import (
    LockBusyError,
    atomic_output,
    atomic_path,
    exclusive_lock,
    is_temp_name,
    lock_file,
    staging_folder,
    temp_name,
    write_atomic,
)

ROOT = Path(__file__).resolve().parents[1]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_temp_name(p))


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "summary.csv"
    assert write_atomic(target, "case,dice\r\na,0.9\n") == target  # the folder is made; newlines kept
    assert target.read_bytes() == b"case,dice\r\na,0.9\n"
    write_atomic(target, b"\x00\x01", fsync=True)
    assert target.read_bytes() == b"\x00\x01"
    assert _leftovers(target.parent) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text('{"old": true}')
    with pytest.raises(RuntimeError), atomic_path(target, fsync=True) as temporary:
        temporary.write_text('{"new": ')
        raise RuntimeError("the writer died half-way")
    assert json.loads(target.read_text()) == {"old": True}
    empty = r"produced an empty file case\.nii\.gz; nothing was written"
    with pytest.raises(ImageWriteError, match=empty), atomic_output(tmp_path / "case.nii.gz") as temporary:
        temporary.touch()
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_write_atomic_names_the_file_and_the_cause(tmp_path: Path) -> None:
    folder = tmp_path / "summary.csv"
    folder.mkdir()
    with pytest.raises(ImageWriteError, match=r"summary\.csv: is a folder"):
        write_atomic(folder, "x")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with pytest.raises(ImageWriteError) as caught:
        write_atomic(blocker / "out.json", "{}")
    assert str(caught.value).startswith("file exists writing") or "not a directory" in str(caught.value)
    assert str(blocker / "out.json") in str(caught.value)


def test_one_temporary_name_pattern_and_its_predicate(tmp_path: Path) -> None:
    target = tmp_path / "case_seg.nii.gz"
    with staging_folder(target) as staging:
        made = [temp_name(target), staging]
        assert staging.is_dir() and staging.parent == tmp_path
    assert not staging.exists()
    for path in made:
        assert path.parent == tmp_path and is_temp_name(path) and is_temp_name(path.name, of=target.name)
        assert not is_temp_name(path, of="case.nii.gz")  # another target's temporaries are not this one's
    for name in ("case_seg.nii.gz", ".medswin", "case.partial", ".case_seg.nii.gz.partial", "..partial"):
        assert not is_temp_name(name, of="case_seg.nii.gz"), name
    assert temp_name(target) != temp_name(target)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from medswin.files import lock_file
    held = lock_file(sys.argv[1])
    held.note("pid 1234 on host ward-7")
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_a_held_lock_is_refused_at_once_and_freed_when_its_holder_dies(tmp_path: Path) -> None:
    path = tmp_path / "area" / "lock-0of1"  # the folder is made
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert lock_file(path, blocking=False) is None
        with (
            pytest.raises(LockBusyError, match="locked by another process"),
            exclusive_lock(path, blocking=False),
        ):
            pass
        assert path.read_text() == "pid 1234 on host ward-7"  # who holds it, for messages
    finally:
        holder.kill()  # like kill -9: no clean-up ran
        holder.wait()
    with exclusive_lock(path, blocking=False, remove=True) as held:
        assert held.content() == "pid 1234 on host ward-7"  # the dead holder's note, now stale
        held.note("mine")
        assert held.content() == "mine"
    assert not path.exists()


_NO_FCNTL = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class NoFcntl:  # what Windows has: no fcntl module at all
        def find_spec(self, name, path=None, target=None):
            if name == "fcntl":
                raise ImportError("No module named 'fcntl'")
            return None

    sys.modules.pop("fcntl", None)
    sys.meta_path.insert(0, NoFcntl())
    import medswin
    import medswin.cli.predict  # `medswin predict` starts
    failed, optional = [], []
    for module in pkgutil.walk_packages(medswin.__path__, "medswin."):
        if module.name.endswith("__main__"):  # runs the CLI when imported
            continue
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as error:  # an optional extra not installed here is not Windows' fault
            (failed if error.name in ("fcntl", None) or error.name.startswith("medswin") else optional).append(
                f"{module.name}: {error}"
            )
        except Exception as error:
            failed.append(f"{module.name}: {type(error).__name__}: {error}")
    print("fcntl imported" if "fcntl" in sys.modules else "no fcntl")
    print("\\n".join(failed))
    """
)


@pytest.mark.slow
def test_every_module_imports_without_fcntl() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _NO_FCNTL], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "no fcntl"
    assert lines[1:] == [] or lines[1:] == [""], "\n".join(lines[1:])

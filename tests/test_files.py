"""Output files: OutputError names the path and the reason, one writer per folder (a second
is refused, a killed one's lock is taken over), and a failed run leaves no empty folder."""
import errno
import os
import signal
import subprocess
import sys
import tempfile

import pytest

from tinyfit.files import FolderBusy, FolderLock, OutputError, atomic_write, make_dir, output_folder


def test_output_errors_name_the_path_and_the_reason(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot create the folder .*/file/sub: (File exists|Not a directory)"):
        make_dir(str(tmp_path / "file" / "sub"))
    with pytest.raises(OutputError, match=r"cannot create the folder .*/file/sub"):
        atomic_write(str(tmp_path / "file" / "sub" / "r.json"), "{}")
    e = OutputError("/x/y", OSError(errno.ENOSPC, "No space left on device"))
    assert str(e) == ("cannot write /x/y: the disk is full; free some space, then rerun with --resume: the files "
                      "written before are intact") and e.path == "/x/y"
    # a quota is full disk for the user: the same advice, its own reason
    q = OutputError("/x/y", OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert str(q) == str(e).replace("the disk is full", "the disk quota is exceeded")
    other = OutputError("/x/y", OSError(errno.EACCES, "Permission denied"))
    assert str(other) == "cannot write /x/y: Permission denied"


def test_a_second_writer_is_refused_and_a_killed_ones_lock_is_taken_over(tmp_path):
    out = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from tinyfit.files import FolderLock\n"
        "with FolderLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"), out,
        os.path.join(os.path.dirname(__file__), "..")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=rf"{out} is in use by process {holder.pid} on .* started"):
            with FolderLock(out):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        holder.kill()
    with FolderLock(out):  # the killed process's lock went with it
        assert f"process {os.getpid()}" in open(os.path.join(out, FolderLock.NAME)).read()


def test_a_failed_run_removes_the_folder_it_created_but_nothing_written(tmp_path):
    new, kept = str(tmp_path / "new"), str(tmp_path / "kept")
    with pytest.raises(KeyError):
        with output_folder(new):
            raise KeyError("before any output")
    assert not os.path.exists(new)
    with pytest.raises(KeyError):
        with output_folder(kept):
            atomic_write(os.path.join(kept, "results.json"), "{}")
            raise KeyError("after an output")
    assert sorted(os.listdir(kept)) == [".tinyfit.lock", "results.json"]
    os.makedirs(str(tmp_path / "old"))
    with pytest.raises(KeyError):
        with output_folder(str(tmp_path / "old")):
            raise KeyError("a folder that existed before is left alone")
    assert os.path.isdir(tmp_path / "old")


def test_output_errors_from_any_exception_say_what_it_said():
    assert str(OutputError("/p", ValueError("bad value"))) == "cannot write /p: bad value"
    assert OutputError("/p", ValueError("bad value")).errno is None
    assert str(OutputError("/p", OSError("plain"))) == "cannot write /p: plain"


def test_atomic_write_goes_through_a_temporary_file_beside_the_target(tmp_path, monkeypatch):
    target = str(tmp_path / "sub" / "r.json")
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: seen.append((a, b, os.stat(a).st_mode & 0o777)) or real(a, b))
    atomic_write(target, b"\x00bytes")
    atomic_write(target, "text \u00e9")
    (tmp, dst, mode), _ = seen
    assert dst == target and os.path.dirname(tmp) == os.path.dirname(target)
    assert os.path.basename(tmp).startswith(".tmp-") and tmp.endswith(".json")
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert open(target, encoding="utf-8").read() == "text \u00e9"
    monkeypatch.undo()

    def half(f):
        f.write(b"partial")
        raise KeyError("writer failed")
    with pytest.raises(KeyError):
        atomic_write(target, half)

    def no_space(f):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OutputError, match="the disk is full"):
        atomic_write(target, no_space)
    assert os.listdir(tmp_path / "sub") == ["r.json"] and open(target, encoding="utf-8").read() == "text \u00e9"

    def no_temporary(**kwargs):   # the folder refuses even the temporary file: nothing to clean up
        raise OSError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", no_temporary)
    with pytest.raises(OutputError, match="Permission denied"):
        atomic_write(target, b"new")
    assert open(target, encoding="utf-8").read() == "text \u00e9"


def test_the_lock_says_who_holds_it_and_is_released_on_exit(tmp_path):
    import re
    out = str(tmp_path / "run")
    os.makedirs(out)
    with open(os.path.join(out, FolderLock.NAME), "w") as f:
        f.write("an old holder's much longer line than any process writes, " * 3 + "\nand a second line\n")
    with FolderLock(out) as held:
        text = open(os.path.join(out, FolderLock.NAME)).read()
        assert re.fullmatch(rf"process {os.getpid()} on \S+, started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\n", text)
        os.ftruncate(held.fd, 0)   # a holder that wrote nothing
        with pytest.raises(FolderBusy) as e:
            with FolderLock(out):
                pass
        assert str(e.value) == (f"{out} is in use by another process; wait for it to finish, or give another output "
                                "folder (--out)")
    assert held.fd is None
    with FolderLock(out):   # released: taken again at once
        with open(os.path.join(out, FolderLock.NAME), "wb") as f:   # a holder line that is not UTF-8, too long
            f.write(b"\xff" + b"x" * 300)
        with pytest.raises(FolderBusy, match=f"in use by \ufffd{'x' * 199}; wait"):
            with FolderLock(out):
                pass
    umask = os.umask(0)   # the lock file's own mode, not the process's umask
    try:
        with FolderLock(str(tmp_path / "mode")):
            assert os.stat(tmp_path / "mode" / FolderLock.NAME).st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)
    os.makedirs(os.path.join(str(tmp_path / "odd"), FolderLock.NAME))
    with pytest.raises(OutputError, match=rf"^cannot write {tmp_path}/odd/{FolderLock.NAME}: Is a directory$"):
        with FolderLock(str(tmp_path / "odd")):
            pass

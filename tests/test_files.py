"""Output files: OutputError names the path and the reason, one writer per folder (a second
is refused, a killed one's lock is taken over), and a failed run leaves no empty folder."""
import errno
import os
import signal
import subprocess
import sys

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

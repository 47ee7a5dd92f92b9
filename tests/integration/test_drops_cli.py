"""``kok send --attach`` and ``kok save`` as subprocesses, and the progress line."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

from client.progress import ProgressLine, clock_time, human_bytes, progress_for
from tests.integration.kokcli import REPO, kok, kok_env, ok
from tests.integration.people import close_all, new_org, new_staff, open_office, unique


async def test_send_with_attachments_then_save_through_the_cli(shared_relay: Any,
                                                               tmp_path: Path) -> None:
    home = tmp_path / "home"
    office = await open_office(shared_relay)
    nord = await new_org(shared_relay, home, office, unique("nord"))
    sued = await new_org(shared_relay, home, office, unique("sued"))
    anna = await new_staff(shared_relay, home, nord, "anna")
    ben = await new_staff(shared_relay, home, sued, "ben")
    await close_all(office, nord, anna, ben)
    files = tmp_path / "files"
    files.mkdir()
    letter = files / "Brief vom Amt.pdf"
    letter.write_bytes(os.urandom(200_000))
    photo = files / "foto.jpg"
    photo.write_bytes(os.urandom(1_500_000))
    sender, reader = f"{nord.org_id}.anna", f"{sued.org_id}.ben"

    # a missing file is refused before anything is sent
    missing = kok("send", "--to", sued.org_id, "--subject", "x", "--body", "y", "--attach",
                  str(files / "fehlt.pdf"), home=home, profile=sender)
    assert missing.code == 2 and "fehlt.pdf" in missing.error_line

    sent = ok(kok("--json", "send", "--to", sued.org_id, "--subject", "Unterlagen", "--body",
                  "Zwei Dateien.", "--attach", str(letter), "--attach", str(photo),
                  home=home, profile=sender))
    answer = json.loads(sent.out)
    assert answer["attachments"] == ["Brief vom Amt.pdf", "foto.jpg"]
    assert sent.err == ""  # no progress under --json

    synced = json.loads(ok(kok("--json", "sync", home=home, profile=reader)).out)
    [message] = synced["messages"]
    assert message["id"] == answer["id"]
    assert [(a["name"], a["size"]) for a in message["attachments"]] == [
        ("Brief vom Amt.pdf", 200_000), ("foto.jpg", 1_500_000)]
    assert all("key" not in a for a in message["attachments"])  # file keys never printed

    target = tmp_path / "ablage"
    target.mkdir()
    saved = ok(kok("save", answer["id"][:8], "--dir", str(target), home=home, profile=reader))
    assert saved.err == ""  # not a terminal: no progress line
    assert saved.out.count("Saved ") == 2
    assert (target / "Brief vom Amt.pdf").read_bytes() == letter.read_bytes()
    assert (target / "foto.jpg").read_bytes() == photo.read_bytes()

    again = kok("save", answer["id"][:8], "--dir", str(target), home=home, profile=reader)
    assert again.code == 1 and "--force" in again.error_line
    german = kok("save", answer["id"][:8], "--dir", str(target), home=home, profile=reader,
                 env=kok_env(LANG="de_DE.UTF-8"))
    assert german.code == 1 and "gibt es schon" in german.error_line
    forced = json.loads(ok(kok("--json", "save", answer["id"], "--dir", str(target), "--force",
                               home=home, profile=reader)).out)
    assert [s["name"] for s in forced["saved"]] == ["Brief vom Amt.pdf", "foto.jpg"]
    assert forced["saved"][1]["path"] == str(target / "foto.jpg")

    nowhere = kok("save", answer["id"], "--dir", str(tmp_path / "nowhere"), home=home,
                  profile=reader)
    assert nowhere.code == 2 and "nowhere" in nowhere.error_line
    assert "--mkdir" in nowhere.error_line and not (tmp_path / "nowhere").exists()
    made = ok(kok("save", answer["id"], "--dir", str(tmp_path / "nowhere" / "2026"), "--mkdir",
                  home=home, profile=reader))
    assert "nowhere/2026" in made.err  # says it created the folder
    assert (tmp_path / "nowhere" / "2026" / "foto.jpg").read_bytes() == (
        target / "foto.jpg").read_bytes()
    assert (tmp_path / "nowhere" / "2026").stat().st_mode & 0o777 == 0o700
    await sued.close()


async def test_progress_shows_on_a_terminal_only(shared_relay: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    office = await open_office(shared_relay)
    nord = await new_org(shared_relay, home, office, unique("nord"))
    sued = await new_org(shared_relay, home, office, unique("sued"))
    await close_all(office, sued, nord)
    upload = tmp_path / "scan.pdf"
    upload.write_bytes(os.urandom(3_000_000))
    master, slave = pty.openpty()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "client", "--home", str(home), "--profile", nord.org_id,
             "send", "--to", sued.org_id, "--subject", "s", "--body", "b", "--attach",
             str(upload)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
            env=kok_env(), cwd=REPO, timeout=60, check=False)
        os.close(slave)
        slave = -1
        err = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            err += data
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    assert run.returncode == 0, err
    text = err.decode()
    assert "scan.pdf: 3.0 MB in " in text  # the final line of the file, on the terminal
    assert text.rstrip().endswith("/s)")


def test_progress_line_text_rate_and_time_left() -> None:
    out = io.StringIO()
    now = [100.0]
    line = ProgressLine(out, clock=lambda: now[0])
    line("akte.zip", 0, 10_000_000)
    now[0] += 1.0
    line("akte.zip", 2_500_000, 10_000_000)
    now[0] += 0.1
    line("akte.zip", 2_600_000, 10_000_000)  # too soon to redraw
    now[0] += 0.8
    line("akte.zip", 2_700_000, 10_000_000)  # still within the second: at most once a second
    now[0] += 2.1
    line("akte.zip", 10_000_000, 10_000_000)
    frames = out.getvalue().split("\r")[1:]
    assert frames[0] == "akte.zip: 0 B of 10.0 MB (0%)"  # no "0 B/s, 0:00 left" before data
    assert frames[1].startswith("akte.zip: 2.5 MB of 10.0 MB (25%), 2.5 MB/s, 0:03 left")
    # the longer line before is blanked, then the final line ends without trailing spaces
    assert frames[2] == " " * len(frames[1])
    assert frames[3] == "akte.zip: 10.0 MB in 0:04 (2.5 MB/s)\n"
    assert len(frames) == 4
    long = io.StringIO()
    ProgressLine(long, clock=lambda: now[0])("Bericht " * 20 + ".pdf", 5, 10)
    assert len(long.getvalue().strip("\r")) <= 79 and ".pdf" in long.getvalue()
    assert progress_for(False, io.StringIO(), quiet=True) is None  # --quiet
    assert progress_for(True, io.StringIO()) is None  # --json
    assert progress_for(False, io.StringIO()) is None  # not a terminal
    assert (human_bytes(999), human_bytes(1_234_567), clock_time(3725)) == (
        "999 B", "1.2 MB", "1:02:05")

"""The three examples (the original scripts on pixgram) run against each other."""

import pathlib
import subprocess
import sys

from conftest import free_port

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def run(name, *args, cwd):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )


def test_both_clients_are_served_by_the_server(tmp_path):
    images, lists = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "image_and_json_server.py"), images, lists, "3"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        one = run("one_datagram_client.py", images, cwd=tmp_path)
        assert one.returncode == 0 and "acknowledged 1, lost 0" in one.stdout, one.stderr
        chunked = run("chunked_client.py", images, lists, cwd=tmp_path)
        assert chunked.returncode == 0 and "both acknowledged" in chunked.stdout, chunked.stderr
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0, err
    assert "saved small.jpg" in out and "saved large.jpg" in out
    assert "list [1, 2, 3, 'four']" in out
    assert (tmp_path / "large.jpg").read_bytes()[:2] == b"\xff\xd8"

"""`make up`'s announcement mints an admin token in a child process: Ctrl-C while the platform
is still starting reaches that child too (the whole foreground process group gets it), and
`make up` must then stop cleanly, not end in a traceback."""

import sys

import jwt

from veloz.dev import devstack

SECRET = "a-test-only-secret-that-is-long-enough-for-hs256"


def test_the_announcement_mints_an_admin_token(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", SECRET)
    token = devstack.admin_token()
    assert token is not None
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert "admin" in claims["roles"]


def test_a_token_child_stopped_by_ctrl_c_leaves_no_token_and_no_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", SECRET)
    interrupted = tmp_path / "python"  # dies of SIGINT, even where it starts ignored (CI)
    interrupted.write_text(f"#!{sys.executable}\nimport os, signal\n"
                           "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
                           "os.kill(os.getpid(), signal.SIGINT)\n")
    interrupted.chmod(0o755)
    monkeypatch.setattr(devstack.sys, "executable", str(interrupted))
    assert devstack.admin_token() is None

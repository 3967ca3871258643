"""The entry point: exit statuses, interruption lines, loud failures of command modules."""

from __future__ import annotations

import pytest

from samscope.cli import _interrupt, main


def test_a_command_module_that_cannot_be_imported_fails_loudly(monkeypatch, capsys):
    monkeypatch.setattr(main, "COMMAND_MODULES", (*main.COMMAND_MODULES, "samscope.cli.no_such_module"))
    with pytest.raises(SystemExit) as exc:
        main.main(["info"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "samscope.cli.no_such_module cannot be imported" in err and "reinstall" in err


def test_usage_errors_are_click_messages_not_tracebacks(capsys):
    with pytest.raises(SystemExit) as exc:
        main.main(["no-such-command"])
    assert exc.value.code == 2
    assert "No such command" in capsys.readouterr().err


def test_interrupt_line_says_what_finished(monkeypatch, capsys):
    def command() -> None:
        _interrupt.report(lambda: "3 of 10 image(s) written")
        _interrupt.report(lambda: 1 / 0)  # a failing reporter never hides the message
        raise KeyboardInterrupt

    app = main.build_app()
    app.command("boom")(command)
    monkeypatch.setattr(main, "build_app", lambda: app)
    with pytest.raises(SystemExit) as exc:
        main.main(["boom"])
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted (Ctrl-C): 3 of 10 image(s) written" in err and "resume" in err


def test_sigterm_exits_143(monkeypatch, capsys):
    def command() -> None:
        raise main.Terminated()

    app = main.build_app()
    app.command("boom")(command)
    monkeypatch.setattr(main, "build_app", lambda: app)
    with pytest.raises(SystemExit) as exc:
        main.main(["boom"])
    assert exc.value.code == 143
    assert "interrupted (SIGTERM): nothing was finished" in capsys.readouterr().err


def test_os_errors_are_one_line(monkeypatch, capsys):
    def command() -> None:
        raise PermissionError(13, "Permission denied", "/x/y.tif")

    app = main.build_app()
    app.command("boom")(command)
    monkeypatch.setattr(main, "build_app", lambda: app)
    with pytest.raises(SystemExit) as exc:
        main.main(["boom"])
    assert exc.value.code == 1
    assert capsys.readouterr().err.strip() == "error: Permission denied: /x/y.tif"


def test_main_leaves_the_callers_sigterm_handling_alone(capsys):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        main.main(["no-such-command"])
    assert signal.getsignal(signal.SIGTERM) == before

"""The command line: gitlab-runner's verbs (register, verify, unregister, list, run, run-single),
and skyrunner's own (exec, deploy, status). Only this package prints to the terminal."""

from skyrunner.cli._app import main, skyrunner

__all__ = ["main", "skyrunner"]

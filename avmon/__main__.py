from avmon.cli import entry

raise SystemExit(entry())

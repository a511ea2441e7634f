from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pathlib import Path

from frontdesk.rules.loading import load_file
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.preview import apply, effects, semantic_diff, text_diff
from frontdesk.rules.schema import RulesError, parse


class Command(BaseCommand):
    help = "Load or show the rules that map Stripe purchases to access."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="validate a rules file, store it as a new version and apply it")
        load.add_argument("file")
        preview = sub.add_parser("preview", help="what loading a rules file would change, without changing it")
        preview.add_argument("file")
        show = sub.add_parser("show", help="the current rules version")
        show.add_argument("--json", action="store_true")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "preview":
            self.preview(options["file"])
            return
        if action == "load":
            previous = RulesVersion.current()
            try:
                version, created = load_file(options["file"])
            except FileNotFoundError:
                raise CommandError(f"{options['file']}: no such file") from None
            except RulesError as exc:
                raise CommandError(f"the rules file is not valid:\n{exc}") from None
            if created:
                self.stdout.write(f"loaded {options['file']} as rules v{version.number} ({version.content_hash[:12]})")
                changed = apply(version, previous)
                self.stdout.write(f"applied: {len(changed)} customer(s) change; their providers are being updated")
            else:
                self.stdout.write(f"unchanged: {options['file']} is identical to rules v{version.number}")
            return
        current = RulesVersion.current()
        if current is None:
            raise CommandError("no rules loaded yet: run `frontdesk rules load FILE`")
        if options["json"]:
            self.stdout.write(json.dumps(current.parsed, indent=2))
            return
        self.stdout.write(f"rules v{current.number}, loaded {current.loaded_at:%Y-%m-%d %H:%M} UTC from "
                          f"{current.source} ({current.content_hash[:12]})\n")
        self.stdout.write(current.content)

    def preview(self, path: str) -> None:
        try:
            content = Path(path).read_text(encoding="utf-8")
            new = parse(content, path)
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except RulesError as exc:
            raise CommandError(f"the rules file is not valid:\n{exc}") from None
        current = RulesVersion.current()
        name = f"rules v{current.number}" if current else "(no rules)"
        self.stdout.write(f"Changes from {name} to {path}:")
        for line in semantic_diff(current.parsed if current else None, new) or ["  (no change in meaning)"]:
            self.stdout.write(f"  {line}")
        self.stdout.write("")
        for line in text_diff(current.content if current else "", content, name, path):
            self.stdout.write(line)
        self.stdout.write("")
        count = 0
        for effect in effects(current.parsed if current else None, new):
            count += 1
            self.stdout.write(effect.describe())
        self.stdout.write(f"{count} customer(s) would change. Nothing was applied; `frontdesk rules load {path}` applies it.")

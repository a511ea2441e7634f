from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from frontdesk.rules.loading import load_file
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.schema import RulesError


class Command(BaseCommand):
    help = "Load or show the rules that map Stripe purchases to access."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="validate a rules file and store it as a new version")
        load.add_argument("file")
        show = sub.add_parser("show", help="the current rules version")
        show.add_argument("--json", action="store_true")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "load":
            try:
                version, created = load_file(options["file"])
            except FileNotFoundError:
                raise CommandError(f"{options['file']}: no such file") from None
            except RulesError as exc:
                raise CommandError(f"the rules file is not valid:\n{exc}") from None
            if created:
                self.stdout.write(f"loaded {options['file']} as rules v{version.number} ({version.content_hash[:12]})")
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

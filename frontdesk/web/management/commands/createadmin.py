from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from frontdesk.audit.models import record
from frontdesk.web.roles import set_role


class Command(BaseCommand):
    help = "Create the first admin user of the admin app (or reset that user's password)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-env", default="FRONTDESK_ADMIN_PASSWORD",
                            help="read the password from this environment variable instead of a prompt")

    def handle(self, *args: Any, username: str, email: str, password_env: str, **options: Any) -> None:
        password = os.environ.get(password_env) or ""
        if not password:
            if not self.stdin_isatty():
                raise CommandError(f"no terminal to ask for a password: set {password_env}")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords differ")
        User = get_user_model()
        user = User.objects.filter(username=username).first() or User(username=username, email=email)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        created = user.pk is None
        user.set_password(password)
        user.is_staff = True
        user.save()
        set_role(user, "admin")
        record("cli", "user_created" if created else "user_password_reset", username, after={"role": "admin"})
        self.stdout.write(f"{'created' if created else 'updated'} admin user {username!r}")

    @staticmethod
    def stdin_isatty() -> bool:
        import sys

        return sys.stdin.isatty()

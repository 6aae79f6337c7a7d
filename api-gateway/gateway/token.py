"""Mint a development token: `python -m gateway.token --role admin [--sub ID] [--ttl 3600]`.

JWT_SECRET (and JWT_ISSUER, JWT_AUDIENCE) come from the environment; without JWT_SECRET the
secret the local start wrote to `.local/jwt-secret` is used. Prints only the token.
"""

import argparse
import os
import sys
from pathlib import Path

from gateway.auth import KNOWN_ROLES, TokenAuthority
from gateway.config import JwtSettings


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = jwt_settings()
    if args.ttl > settings.jwt_max_lifetime_seconds:  # the gateway would refuse the token
        parser.error(f"--ttl may be at most JWT_MAX_LIFETIME_SECONDS "
                     f"({settings.jwt_max_lifetime_seconds})")
    authority = TokenAuthority(settings)
    print(authority.mint(args.sub or f"dev-{args.role[0]}", sorted(set(args.role)), args.ttl))
    return 0


def jwt_settings(secret_file: Path | None = None) -> JwtSettings:
    secret_file = secret_file or local_secret_file()
    if "JWT_SECRET" not in os.environ and secret_file and secret_file.exists():
        return JwtSettings.from_env(jwt_secret=secret_file.read_text().strip())
    return JwtSettings.from_env()


def local_secret_file() -> Path | None:
    """`make up`'s generated secret, where veloz.dev is installed: the images carry no
    veloz.dev, and there JWT_SECRET is always set (`docker compose exec api-gateway python -m
    gateway.token ...`, the rollout's smoke token)."""
    try:
        from veloz.dev.devstack import JWT_SECRET_FILE
    except ImportError:
        return None
    return JWT_SECRET_FILE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.token", description=__doc__)
    parser.add_argument("--role", action="append", required=True, choices=sorted(KNOWN_ROLES),
                        help="repeat for several roles")
    parser.add_argument("--sub", help="subject (user id); default dev-<role>")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    return parser


if __name__ == "__main__":
    sys.exit(main())

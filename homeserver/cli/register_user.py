"""``register_new_matrix_user``: create an account through the shared-secret admin API.

Takes the same flags as Synapse's tool, so operators' scripts keep working:
``register_new_matrix_user -c homeserver.yaml -u alice -p secret --no-admin [server_url]``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import yaml

from homeserver.handlers.accounts.admin import shared_secret_mac

DEFAULT_SERVER_URL = "http://localhost:8008"
TIMEOUT_S = 30


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="register_new_matrix_user",
        description="Register a user on a homeserver with the registration shared secret, "
                    "even when open registration is disabled.")
    parser.add_argument("-u", "--user", help="localpart of the new user; prompted for if omitted")
    parser.add_argument("--exists-ok", action="store_true", help="do not fail if the user already exists")
    passwords = parser.add_mutually_exclusive_group()
    passwords.add_argument("-p", "--password", help="password; prompted for if omitted")
    passwords.add_argument("--password-file", type=argparse.FileType("r"), help="file holding the password")
    parser.add_argument("-t", "--user_type", help="user type (as Synapse's user_type)")
    admin = parser.add_mutually_exclusive_group()
    admin.add_argument("-a", "--admin", action="store_true", help="make the user a server admin")
    admin.add_argument("--no-admin", action="store_true", help="make the user a regular user")
    secrets = parser.add_mutually_exclusive_group(required=True)
    secrets.add_argument("-c", "--config", type=argparse.FileType("r"),
                         help="homeserver.yaml to read registration_shared_secret from")
    secrets.add_argument("-k", "--shared-secret", help="the registration shared secret")
    parser.add_argument("server_url", nargs="?",
                        help=f"homeserver URL (default: from the config's listeners, else {DEFAULT_SERVER_URL})")
    return parser.parse_args(argv)


def url_from_config(config: dict[str, Any]) -> str | None:
    """A local URL for the first plain-HTTP listener serving the client API."""
    for listener in config.get("listeners") or []:
        if not isinstance(listener, dict) or listener.get("tls"):
            continue
        names = [n for r in listener.get("resources") or [] if isinstance(r, dict) for n in r.get("names") or []]
        if "client" in names and isinstance(listener.get("port"), int):
            return f"http://localhost:{listener['port']}"
    return None


def request_json(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read().decode("utf-8"))
        except ValueError:
            detail = {}
        raise RegistrationFailed(error.code, detail) from None


class RegistrationFailed(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('error') or body}")
        self.status = status
        self.errcode = body.get("errcode")


def register(server_url: str, secret: str, user: str, password: str, admin: bool,
             user_type: str | None) -> dict[str, Any]:
    endpoint = server_url.rstrip("/") + "/_synapse/admin/v1/register"
    nonce = request_json("GET", endpoint)["nonce"]
    body: dict[str, Any] = {"nonce": nonce, "username": user, "password": password, "admin": admin,
                            "mac": shared_secret_mac(secret, nonce, user, password, admin, user_type)}
    if user_type:
        body["user_type"] = user_type
    return request_json("POST", endpoint, body)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server_url = args.server_url
    if args.config is not None:
        config = yaml.safe_load(args.config) or {}
        secret = config.get("registration_shared_secret")
        if not secret:
            print("No 'registration_shared_secret' defined in the config", file=sys.stderr)
            return 1
        server_url = server_url or url_from_config(config)
    else:
        secret = args.shared_secret
    server_url = server_url or DEFAULT_SERVER_URL

    user = args.user or input("New user localpart: ").strip()
    if not user:
        print("Invalid user name", file=sys.stderr)
        return 1
    if args.password_file is not None:
        password = args.password_file.read().strip()
    elif args.password is not None:
        password = args.password
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            print("Passwords do not match", file=sys.stderr)
            return 1
    if not password:
        print("Password cannot be blank.", file=sys.stderr)
        return 1
    if args.admin or args.no_admin:
        admin = bool(args.admin)
    else:
        admin = input("Make admin [no]: ").strip().lower() in ("y", "yes", "true")

    print("Sending registration request...")
    try:
        register(server_url, secret, user, password, admin, args.user_type)
    except RegistrationFailed as error:
        if args.exists_ok and error.errcode == "M_USER_IN_USE":
            print("User already exists. Skipping.")
            return 0
        print(f"ERROR! Received {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as error:
        print(f"ERROR! Cannot reach {server_url}: {error}", file=sys.stderr)
        return 1
    print("Success!")
    return 0


if __name__ == "__main__":
    sys.exit(main())

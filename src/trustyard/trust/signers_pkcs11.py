"""Signing keys on a PKCS#11 token (a YubiKey, a smart card, an HSM; SoftHSM2 in the tests).

The private key is generated on the token and never leaves it: the token signs a SHA-256 digest with
``CKM_ECDSA``, whose output is already the raw ``r‖s`` notary wants. ``CKM_ECDSA`` over a digest rather than
``CKM_ECDSA_SHA256`` because every token has the former (YubiKey PIV, SoftHSM2), not all the latter.

Built on python-pkcs11 directly: securesystemslib's ``HSMSigner`` wraps the same library but cannot generate
keys and returns DER signatures that would only be converted back. A key is found again by the module path,
the token label and the object ID recorded when it was made; the PIN comes from ``Secrets`` when the key is
used.

Not here: which role a key signs for (``keyfiles``), the file backend (``signers``).
"""

from __future__ import annotations

import hashlib
import os
import secrets as _random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.types import SignMixin
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from trustyard.trust.signers import GeneratedKey, KeyFileError, Secrets, Signer, notary_key

__all__ = ["DEFAULT_MODULES", "Pkcs11Backend", "Pkcs11Signer", "find_module", "on_own_thread"]

R = TypeVar("R")

# where the usual PKCS#11 modules are installed on Debian: YubiKey's libykcs11, then SoftHSM2, then OpenSC
DEFAULT_MODULES: Final = (
    "/usr/lib/x86_64-linux-gnu/libykcs11.so",
    "/usr/lib/libykcs11.so",
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
)
MODULE_ENV: Final = "TRUSTYARD_PKCS11_MODULE"


def find_module(module: str | None) -> str:
    """The module to load: the one given, else ``TRUSTYARD_PKCS11_MODULE``, else the first installed default."""
    chosen = module or os.environ.get(MODULE_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise KeyFileError(f"PKCS#11 module {chosen} does not exist")
        return chosen
    for candidate in DEFAULT_MODULES:
        if Path(candidate).is_file():
            return candidate
    raise KeyFileError(
        f"no PKCS#11 module found (looked for {', '.join(DEFAULT_MODULES)}); "
        f"install one (e.g. the Debian package softhsm2 or ykcs11) or set {MODULE_ENV}"
    )


def on_own_thread(work: Callable[[], R]) -> R:
    """Run ``work`` on a thread of its own and return (or raise) what it did.

    PKCS#11 modules built on OpenSSL (SoftHSM2, OpenSC) leave entries on OpenSSL's error queue, which is
    per thread; on the caller's thread the next TLS handshake of Python's ``ssl`` would read them and fail
    ("no such engine"). A throwaway thread keeps them out of the caller's queue.
    """
    result: list[R] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as e:  # handed to the caller's thread as it is
            failure.append(e)

    thread = threading.Thread(target=run, name="pkcs11")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _token(module: str, label: str) -> pkcs11.Token:
    try:
        return pkcs11.lib(module).get_token(token_label=label)
    except pkcs11.NoSuchToken as e:
        raise KeyFileError(f"no PKCS#11 token labelled {label!r} in {module} (is it plugged in / initialised?)") from e
    except pkcs11.PKCS11Error as e:
        raise KeyFileError(f"PKCS#11 module {module}: {type(e).__name__} {e}") from e
    except RuntimeError as e:  # python-pkcs11 loads one module per process
        raise KeyFileError(f"PKCS#11 module {module}: {e}") from e


def _open(token: pkcs11.Token, label: str, secrets: Secrets, *, rw: bool = False) -> pkcs11.Session:
    try:
        return token.open(user_pin=secrets.pin(label), rw=rw)
    except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange) as e:
        raise KeyFileError(f"wrong PIN for PKCS#11 token {label!r}") from e
    except pkcs11.PinLocked as e:
        raise KeyFileError(f"PKCS#11 token {label!r} is locked (too many wrong PINs)") from e
    except pkcs11.PKCS11Error as e:
        raise KeyFileError(f"cannot log in to PKCS#11 token {label!r}: {type(e).__name__}") from e


@dataclass(frozen=True, slots=True)
class Pkcs11Signer:
    """A P-256 private key on a token; each signature opens a session (the PIN is asked for once per run)."""

    module: str
    token_label: str
    object_id: bytes
    public: ec.EllipticCurvePublicKey
    secrets: Secrets

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half, recorded when the key was made."""
        return self.public

    def sign(self, message: bytes) -> bytes:
        """SHA-256 here, ``CKM_ECDSA`` on the token: raw ``r‖s``."""
        return on_own_thread(lambda: self._sign(message))

    def _sign(self, message: bytes) -> bytes:
        token = _token(self.module, self.token_label)
        with _open(token, self.token_label, self.secrets) as session:
            try:
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=self.object_id)
                if not isinstance(key, SignMixin):
                    raise KeyFileError(f"PKCS#11 object {self.object_id.hex()} cannot sign")
                signature = key.sign(hashlib.sha256(message).digest(), mechanism=Mechanism.ECDSA)
            except pkcs11.NoSuchKey as e:
                raise KeyFileError(
                    f"PKCS#11 token {self.token_label!r} holds no private key with ID {self.object_id.hex()}"
                ) from e
            except pkcs11.PKCS11Error as e:
                raise KeyFileError(f"PKCS#11 token {self.token_label!r} failed to sign: {type(e).__name__}") from e
        if len(signature) != 64:
            raise KeyFileError(f"PKCS#11 token {self.token_label!r} returned a {len(signature)}-byte signature")
        return bytes(signature)


class Pkcs11Backend:
    """Keys generated on a PKCS#11 token; options ``module`` (path) and ``token`` (label, required)."""

    name = "pkcs11"

    def generate(self, folder: Path, label: str, options: dict[str, str], secrets: Secrets) -> GeneratedKey:
        """Generate a P-256 key pair on the token, labelled ``label``, with a random 8-byte object ID."""
        del folder
        return on_own_thread(lambda: self._generate(label, options, secrets))

    def _generate(self, label: str, options: dict[str, str], secrets: Secrets) -> GeneratedKey:
        unknown = set(options) - {"module", "token"}
        if unknown:
            raise KeyFileError(f"PKCS#11 keys take the options module and token, not {', '.join(sorted(unknown))}")
        token_label = options.get("token")
        if not token_label:
            raise KeyFileError("name the PKCS#11 token (--pkcs11-token LABEL)")
        module = find_module(options.get("module"))
        token = _token(module, token_label)
        object_id = _random.token_bytes(8)
        with _open(token, token_label, secrets, rw=True) as session:
            try:
                params = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
                )
                public_obj, _ = params.generate_keypair(store=True, label=label, id=object_id)
                der = encode_ec_public_key(public_obj)
            except pkcs11.PKCS11Error as e:
                raise KeyFileError(f"PKCS#11 token {token_label!r} could not generate a key: {type(e).__name__}") from e
        public = serialization.load_der_public_key(der)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise KeyFileError("the token generated something other than an EC key")
        signer = Pkcs11Signer(module, token_label, object_id, public, secrets)
        details = {"module": module, "token": token_label, "object_id": object_id.hex()}
        return GeneratedKey(signer, notary_key(public), details)

    def load(
        self, folder: Path, key_id: str, public: ec.EllipticCurvePublicKey, details: dict[str, str], secrets: Secrets
    ) -> Signer:
        """The signer of a key recorded with its module, token and object ID."""
        del folder
        try:
            module, token_label, object_id = details["module"], details["token"], bytes.fromhex(details["object_id"])
        except (KeyError, ValueError) as e:
            raise KeyFileError(f"the record of PKCS#11 key {key_id} is damaged ({e})") from e
        return Pkcs11Signer(find_module(module), token_label, object_id, public, secrets)

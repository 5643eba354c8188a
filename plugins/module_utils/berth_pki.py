"""PKI decisions for berth: when a host's server certificate must be issued
again. Plain functions over what community.crypto.x509_certificate_info
returns; no I/O."""

import contextlib
import datetime
import ipaddress

ASN1_TIME = "%Y%m%d%H%M%SZ"


def normalized_sans(sans):
    """A set of comparable subject alternative names: type upper-case, DNS
    names lower-case, IP addresses in their canonical form."""
    found = set()
    for san in sans or []:
        kind, value = (str(san).split(":", 1) + [""])[:2]
        kind = kind.strip().upper()
        value = value.strip()
        if kind in ("IP", "IP ADDRESS"):
            kind = "IP"
            with contextlib.suppress(ValueError):
                value = str(ipaddress.ip_address(value.split("/")[0]))
        elif kind == "DNS":
            value = value.lower().rstrip(".")
        found.add("%s:%s" % (kind, value))
    return found


def _key_id(value):
    return (value or "").replace(":", "").lower()


def expires_within(not_after, now, days):
    """Whether a certificate whose notAfter is `not_after` (ASN.1 time, as
    x509_certificate_info gives it) ends within `days` days of `now`."""
    end = datetime.datetime.strptime(not_after, ASN1_TIME).replace(tzinfo=datetime.UTC)
    return end - now <= datetime.timedelta(days=int(days))


def reissue_reasons(cert, ca, sans, now, renew_days, key_changed=False):
    """Why the installed certificate `cert` (x509_certificate_info of it, or
    None when there is none) must be issued again from the CA `ca`
    (x509_certificate_info of the CA); [] when it can stay. `now` is an
    aware datetime or an ASN.1 time string."""
    if isinstance(now, str):
        now = datetime.datetime.strptime(now, ASN1_TIME).replace(tzinfo=datetime.UTC)
    if not cert:
        return ["no certificate"]
    reasons = []
    if key_changed:
        reasons.append("new key")
    same_issuer = (cert.get("issuer") or {}) == (ca.get("subject") or {})
    # A CA without a subject key identifier is known by its name alone.
    ca_key_id = _key_id(ca.get("subject_key_identifier"))
    same_key_id = not ca_key_id or _key_id(cert.get("authority_key_identifier")) == ca_key_id
    if not (same_issuer and same_key_id):
        reasons.append("not issued by this CA")
    if normalized_sans(cert.get("subject_alt_name")) != normalized_sans(sans):
        reasons.append("other names")
    if expires_within(cert["not_after"], now, renew_days):
        reasons.append("expires within %s days" % renew_days)
    return reasons

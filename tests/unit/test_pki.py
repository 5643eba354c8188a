"""When a host's server certificate is issued again: missing, another CA,
other names, within the renewal window, or a new key. Inputs are shaped as
community.crypto.x509_certificate_info returns them."""

import datetime

from ansible_collections.berth.ops.plugins.module_utils.berth_pki import expires_within, normalized_sans, reissue_reasons
from hypothesis import given
from hypothesis import strategies as st

CA = {"subject": {"commonName": "berth lab CA"}, "subject_key_identifier": "AB:CD:01"}
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
SANS = ["DNS:registry.lab", "IP:10.77.1.11"]


def cert(**overrides):
    found = {
        "issuer": {"commonName": "berth lab CA"},
        "authority_key_identifier": "ab:cd:01",
        "subject_alt_name": ["IP:10.77.1.11", "DNS:Registry.lab"],
        "not_after": "20280101000000Z",
    }
    found.update(overrides)
    return found


def test_a_good_certificate_stays():
    assert reissue_reasons(cert(), CA, SANS, NOW, 30) == []


def test_a_missing_certificate_is_issued():
    assert reissue_reasons(None, CA, SANS, NOW, 30) == ["no certificate"]


def test_another_cas_certificate_is_issued_again():
    assert reissue_reasons(cert(authority_key_identifier="ff:ee"), CA, SANS, NOW, 30) == ["not issued by this CA"]
    assert reissue_reasons(cert(issuer={"commonName": "old CA"}), CA, SANS, NOW, 30) == ["not issued by this CA"]


def test_a_ca_without_a_key_identifier_is_known_by_its_name():
    bare = {"subject": CA["subject"]}
    assert reissue_reasons(cert(authority_key_identifier=None), bare, SANS, NOW, 30) == []
    assert reissue_reasons(cert(issuer={"commonName": "old CA"}), bare, SANS, NOW, 30) == ["not issued by this CA"]


def test_other_names_are_issued_again():
    assert reissue_reasons(cert(), CA, SANS + ["DNS:more.lab"], NOW, 30) == ["other names"]
    assert reissue_reasons(cert(), CA, ["DNS:registry.lab"], NOW, 30) == ["other names"]


def test_the_renewal_window_counts_from_now():
    ends_soon = cert(not_after="20261220000000Z")
    assert reissue_reasons(ends_soon, CA, SANS, NOW, 30) == ["expires within 30 days"]
    assert reissue_reasons(ends_soon, CA, SANS, NOW, 10) == []
    assert reissue_reasons(ends_soon, CA, SANS, "20261201120000Z", 30) == ["expires within 30 days"]


def test_a_new_key_needs_a_new_certificate():
    assert reissue_reasons(cert(), CA, SANS, NOW, 30, key_changed=True) == ["new key"]


def test_names_compare_by_meaning():
    assert normalized_sans(["DNS:Host.Example.", "IP Address:10.0.0.010", "IP:::1"]) == {"DNS:host.example", "IP:10.0.0.010", "IP:::1"}
    assert normalized_sans(["IP:fe80:0::1"]) == normalized_sans(["IP:fe80::1"])


@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=3000))
def test_expiry_is_within_the_window_exactly_when_the_days_left_are_no_more(days_left, window):
    end = NOW + datetime.timedelta(days=days_left)
    assert expires_within(end.strftime("%Y%m%d%H%M%SZ"), NOW, window) == (days_left <= window)

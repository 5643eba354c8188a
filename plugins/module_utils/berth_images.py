"""Image references: the one parser berth uses everywhere (build, prune,
rollout, inventory checks). Follows the grammar of the distribution
reference package that Docker itself uses."""

import re

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = r"%s(?:%s%s)*" % (_ALNUM, _SEPARATOR, _ALNUM)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = r"(?:%s(?:\.%s)*|%s)(?::[0-9]+)?" % (_DOMAIN_COMPONENT, _DOMAIN_COMPONENT, _IPV6)
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

TAG = re.compile(r"^%s$" % _TAG)
DIGEST = re.compile(r"^%s$" % _DIGEST)
DOMAIN = re.compile(r"^%s$" % _DOMAIN)
PATH = re.compile(r"^%s(?:/%s)*$" % (_PATH_COMPONENT, _PATH_COMPONENT))
REMAINDER = re.compile(r"^(?P<path>%s(?:/%s)*)(?::(?P<tag>%s))?(?:@(?P<digest>%s))?$" % (_PATH_COMPONENT, _PATH_COMPONENT, _TAG, _DIGEST))
DOCKER_HUB = "docker.io"
MAX_NAME = 255


class Reference:
    """A parsed image reference. `registry` is None for Docker Hub names."""

    def __init__(self, registry, repository, tag=None, digest=None):
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @property
    def name(self):
        """registry/repository, as used to tag and push."""
        return "%s/%s" % (self.registry, self.repository) if self.registry else self.repository

    def with_tag(self, tag):
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self):
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def __repr__(self):
        return "Reference(%r)" % str(self)


def _split_domain(text):
    """Docker's rule: the first component is a registry when it has a dot or
    a port, or is localhost."""
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return None, text


def parse_reference(text, require_tag=False):
    """Parse `registry:5000/team/app:1.2@sha256:...` into a Reference.

    Raises ValueError with the reason when the text is not a valid reference.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("an image reference must be a non-empty string, got %r" % (text,))
    domain, remainder = _split_domain(text)
    match = REMAINDER.match(remainder)
    if (domain and not DOMAIN.match(domain)) or not match:
        raise ValueError("%r is not a valid image reference (expected [registry[:port]/]name[:tag][@digest], lowercase name)" % text)
    path = match.group("path")
    if len(path) + len(domain or "") + 1 > MAX_NAME:
        raise ValueError("%r is not a valid image reference: the name is longer than %d characters" % (text, MAX_NAME))
    tag, digest = match.group("tag"), match.group("digest")
    if require_tag and not tag and not digest:
        raise ValueError("%r has no tag" % text)
    return Reference(domain, path, tag, digest)


def tag_error(tag):
    """Why `tag` cannot be an image tag, or None."""
    if not isinstance(tag, str) or not TAG.match(tag):
        return "%r is not a valid tag (letters, digits, _ . -, up to 128, not starting with . or -)" % (tag,)
    return None


def registry_error(registry):
    """Why `registry` (host[:port]) cannot be a registry address, or None."""
    if not isinstance(registry, str) or not DOMAIN.match(registry):
        return "%r is not a registry address (host or host:port)" % (registry,)
    return None


def hub_name(reference):
    """The Docker Hub spelling Docker uses internally: library/ for official images."""
    if reference.registry not in (None, DOCKER_HUB):
        return reference.name
    return reference.repository if "/" in reference.repository else "library/" + reference.repository


def in_registry(image, registry):
    """The reference with `registry` in front when the image names none."""
    reference = parse_reference(image)
    if reference.registry:
        return reference
    if not registry:
        raise ValueError("image %r names no registry and the building has none" % image)
    return parse_reference("%s/%s" % (registry, image))


def tag_of(image, default="latest"):
    """The tag of an image reference (Docker's default when it has none)."""
    return parse_reference(image).tag or default

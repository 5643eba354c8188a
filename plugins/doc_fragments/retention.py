"""The retention policy option shared by docker_image_prune and registry_prune
(module_utils/berth_retention.py POLICY_SPEC is its argument spec), and what
their diff shows."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  diff_mode:
    details: The references held before and kept after; the plan with reasons is in the result too.
options:
  policy:
    description:
      - The retention policy. The same rules decide on Docker hosts and in registries.
      - Kept are the newest I(keep) tags per repository, what is in use or protected, tags
        matching I(keep_patterns), and whatever arrived less than I(grace) ago.
      - Newest means releases by version first, then pre-releases by version (a pre-release
        never pushes a release out of a slot), then other tags by arrival. C(v2) is a version,
        a bare number such as C(42) is not.
    type: dict
    default: {}
    suboptions:
      keep:
        description: Newest tags kept per repository, 0 to 1000.
        type: int
        default: 5
      keep_patterns:
        description:
          - Tag globs (C(release-*)) or C(repo-glob:tag-glob) that are always kept.
          - Checked as fnmatch reads them; a C([) with no C(]), a stray C(]), an empty C([])
            or a C(repo:tag) pattern with an empty side is refused.
        type: list
        elements: str
        default: []
      grace:
        description:
          - Keep what arrived less than this ago, in seconds or C(15m), C(24h), C(7d); at
            most ten years.
          - Arrival is when the image reached this host (first seen by the module, or tagged
            here) or this registry (pushed), never its build time.
        type: raw
        default: 24h
      repositories:
        description: Only repositories matching these globs; all when empty.
        type: list
        elements: str
        default: []
notes:
  - The policy is validated before any host or registry is contacted; a bad value fails
    naming its field, with nothing changed.
  - Check mode returns the whole plan with reasons and sends no mutating request.
"""

"""The claims runtime: claim tests are pytest items whose checks and thresholds come from the
head entries' YAML; each run leaves a result record the site reads."""

from headatlas.claims.runtime import ClaimRun, NotApplicable, claim

__all__ = ["ClaimRun", "NotApplicable", "claim"]

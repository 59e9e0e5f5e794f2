"""Intake: image (and video) references to decoded pixels, under the security policy.

- :mod:`.images`: :class:`ImageIntake`, the policy (which references are allowed) and the
  entry point;
- :mod:`.local_files`: paths and ``file://`` URIs, confined to the allowed directories;
- :mod:`.url_fetch`: http(s) fetches to public addresses only, checked on every redirect;
- :mod:`.decode`: bytes to an RGB image, by content, with the decompression-bomb guard.
"""

from m2_tools.intake.images import ImageIntake, LoadedImage

__all__ = ["ImageIntake", "LoadedImage"]

"""Intake: image (and video) references to decoded pixels, under the security policy.

- :mod:`.images`: :class:`ImageIntake`, the policy (which references are allowed) and the
  entry point;
- :mod:`.base64_text`: telling base64 image data (and base64 of no image) from paths;
- :mod:`.local_files`: paths and ``file://`` URIs, confined to the allowed directories;
- :mod:`.url_fetch`: http(s) fetches to public addresses only, checked on every redirect
  (:mod:`.addresses` says which are public);
- :mod:`.decode`: bytes to an RGB image, by content, with the decompression-bomb guard;
- :mod:`.video`: a video reference to its sampled frames, under the same policy;
- :mod:`.frames`: video bytes to evenly sampled frames, with bounded decoding.
"""

from m2_tools.intake.images import ImageIntake, LoadedImage

__all__ = ["ImageIntake", "LoadedImage"]

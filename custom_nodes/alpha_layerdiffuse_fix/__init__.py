"""Our node pack: compatibility fixes that make the pinned ComfyUI-layerdiffuse work on ComfyUI v0.3.75.

It registers no nodes. Each fix sits at the ComfyUI API boundary that changed, so it
does not depend on the order in which ComfyUI loads custom nodes (that order is
``os.listdir`` order), and it leaves the third-party files untouched.
"""

from .compat import install

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

install()

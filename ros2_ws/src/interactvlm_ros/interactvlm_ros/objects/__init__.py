"""Object meshes: the label -> metric mesh library and the generator of the shipped CC0 meshes."""

from interactvlm_ros.objects.library import ALIASES, ObjectEntry, ObjectLibrary, ObjectLibraryError, shipped_dir

__all__ = ["ALIASES", "ObjectEntry", "ObjectLibrary", "ObjectLibraryError", "shipped_dir"]

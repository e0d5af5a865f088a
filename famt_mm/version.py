# The release this tree is (CHANGELOG.md has its changes and the earlier releases').
__version__ = '0.4.0'
version_info = tuple(int(part) for part in __version__.split('.'))

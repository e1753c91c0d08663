"""Where stories come from: reading story files and folders, operator templates, images and the bundled samples.

Everything that reads a file, a folder or a URL to build the domain's values lives here, outside
the pure domain (:mod:`posts`): :mod:`bot.sources.stories` (the story loader),
:mod:`bot.sources.templates` (an operator's template folder), :mod:`bot.sources.images` (image
files and URLs) and ``samples/`` (the sample stories ``demo`` loads).
"""

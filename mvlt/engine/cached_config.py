"""A ``Config`` whose formatted text is made once per content."""
from mmengine.config import Config


class CachedTextConfig(Config):
    """MMEngine's ``Config`` that formats its ``pretty_text`` once per content.

    MMEngine formats the whole config with yapf each time ``pretty_text`` is
    read. One training run reads it at least five times: the Runner logs it
    and dumps it, the visualizer and ``RuntimeInfoHook`` store it, and every
    saved checkpoint holds it (``meta['cfg']``). On the 2-vCPU EPYC of
    ``docs/benchmark.md`` each read of the nano test config took 0.21-0.25 s,
    about 1.2 s of a 7 s ``tools/train.py`` run.

    The text is kept together with what it was made from: the config's
    content (``repr`` of its dict), file name and formatting switch. A
    later read with the same content returns it; a changed config is
    formatted again. The text is the one ``Config.pretty_text`` returns.
    Copies, deep copies and pickles keep this class (``Config`` builds them
    with ``self.__class__``).
    """

    @property
    def pretty_text(self) -> str:
        """``Config.pretty_text``, formatted again only when the content,
        the file name or the formatting switch changed."""
        key = (repr(self._cfg_dict), self.filename, self._format_python_code)
        cached = self.__dict__.get('_pretty_text_cache')
        if cached is None or cached[0] != key:
            cached = (key, Config.pretty_text.fget(self))
            # Config.__setattr__ would store it as a config key.
            object.__setattr__(self, '_pretty_text_cache', cached)
        return cached[1]

    @classmethod
    def of(cls, cfg: Config) -> 'CachedTextConfig':
        """The same config (its dict shared, not copied) as this class.

        Args:
            cfg (Config): Any MMEngine config; a ``CachedTextConfig`` is
                returned as it is.
        """
        if isinstance(cfg, cls):
            return cfg
        other = cls.__new__(cls)
        other.__setstate__(cfg.__getstate__())
        return other

"""The operator's brand and contact points in customer-facing text.

Articles write `{brand}`, `{support_email}` and `{support_phone}`; they are filled in when
the articles are read. The bot's messages use the same fields. The values are settings
(`HUB_BRAND_NAME`, `HUB_BRAND_NAME_EN`, `HUB_SUPPORT_EMAIL`, `HUB_SUPPORT_PHONE`); the
composition root calls `configure()` once at start.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Brand:
    """Names and contact points, by language where they differ."""

    name_zh: str = "易币付"
    name_en: str = "YiBiPay"
    support_email: str = "support@yibipay.example"
    support_phone: str = "400-000-0000"

    @classmethod
    def from_settings(cls, settings: object) -> Brand:
        """The brand from `Settings` (attributes missing there keep their defaults)."""
        default = cls()
        return cls(
            name_zh=getattr(settings, "brand_name", None) or default.name_zh,
            name_en=getattr(settings, "brand_name_en", None) or default.name_en,
            support_email=getattr(settings, "support_email", None) or default.support_email,
            support_phone=getattr(settings, "support_phone", None) or default.support_phone,
        )

    def fields(self, lang: str) -> dict[str, str]:
        """The placeholder values for text in `lang`."""
        return {
            "brand": self.name_en if lang == "en" else self.name_zh,
            "support_email": self.support_email,
            "support_phone": self.support_phone,
        }

    def render(self, text: str, lang: str) -> str:
        """`text` with its `{brand}`-style placeholders filled in (other braces untouched)."""
        for key, value in self.fields(lang).items():
            text = text.replace("{" + key + "}", value)
        return text


_current = Brand()


def current() -> Brand:
    """The brand in force."""
    return _current


def configure(brand: Brand) -> None:
    """Set the brand; the help center is read again with it on next use."""
    global _current
    if brand == _current:
        return
    _current = brand
    from hub.helpbot.catalog import load_help_center

    load_help_center.cache_clear()

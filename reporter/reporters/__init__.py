"""libreport-style reporter executables: upload (``reporter-crashkit``), uReport
(``reporter-crashkit-ureport``) and Sentry (``reporter-crashkit-sentry``). Kept free of imports."""

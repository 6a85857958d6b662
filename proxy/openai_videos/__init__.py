"""OpenAI's Videos API (``/v1/videos``) over Modellix: a door onto the same submit pipeline.

- ``request``: reading ``POST /v1/videos`` (JSON or multipart) into a ``VideoRequest``;
- ``mapping``: the OpenAI model name to a Modellix slug, ``seconds``/``size`` to the model's
  own fields, and the Modellix body the pipeline validates, prices and sends;
- ``objects``: a job of the ledger as OpenAI's ``video`` object (status, progress, expiry);
- ``errors``: every refusal in OpenAI's error envelope with OpenAI's statuses;
- ``handlers`` / ``content`` / ``listing``: the routes; ``events``: the webhook event shape;
- ``routes``: where the routes are added to the client application.
"""

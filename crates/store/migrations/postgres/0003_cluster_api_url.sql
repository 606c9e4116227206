-- Where each node's API answers for the others (`[cluster] api_url`): a
-- node asked for live video or a frame of a camera another node runs
-- forwards the request there. NULL: not given; nothing is forwarded to it.
-- Never edit this file once it has landed.
ALTER TABLE cluster_nodes ADD COLUMN api_url TEXT;

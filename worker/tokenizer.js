// tokenizer.json in the browser: @huggingface/tokenizers behind the small interface that
// py/neuroscope/tokenizer.py's JS implementation calls. Ids cross as JSON strings (one call,
// no proxies per id). Settings match the Rust `tokenizers` library, which reads only
// tokenizer.json: no tokenization-space clean-up on decode, no tokenizer_config.json.

import { Tokenizer } from "../node_modules/@huggingface/tokenizers/dist/tokenizers.min.mjs";

export class JsTokenizer {
  constructor(jsonText) {
    this.tokenizer = new Tokenizer(JSON.parse(jsonText), { clean_up_tokenization_spaces: false });
    this.vocabSize = this.tokenizer.get_vocab(true).size;
  }

  encode(text, addSpecialTokens) {
    return JSON.stringify(this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids);
  }

  encodeBatch(textsJson, addSpecialTokens) {
    const texts = JSON.parse(textsJson);
    return JSON.stringify(texts.map((text) =>
      this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids));
  }

  decode(idsJson, skipSpecialTokens) {
    const ids = JSON.parse(idsJson);
    if (ids.length === 0) return ""; // the JS library rejects an empty list; Rust returns ""
    return this.tokenizer.decode(ids, { skip_special_tokens: skipSpecialTokens });
  }

  idToToken(id) {
    return this.tokenizer.id_to_token(id); // undefined (None in Python) when unknown
  }

  tokenToId(token) {
    return this.tokenizer.token_to_id(token);
  }
}

export function createTokenizer(jsonText) {
  return new JsTokenizer(jsonText);
}

package vqgram.lucene;

import java.io.IOException;
import java.util.Set;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.DocValues;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.search.DocIdSetIterator;

/** Values of many documents read in one call: stored fields of a page of hits, doc values of a whole reader. */
public final class DocumentValues {
  private DocumentValues() {}

  /**
   * The stored {@code fields} of each of {@code docs}, flattened doc by doc
   * (null where a document lacks a field): a page of hits' metadata in one call.
   */
  public static String[] stored(IndexReader reader, int[] docs, String[] fields) throws IOException {
    StoredFields stored = reader.storedFields();
    Set<String> wanted = Set.of(fields);
    String[] out = new String[docs.length * fields.length];
    for (int i = 0; i < docs.length; i++) {
      Document doc = stored.document(docs[i], wanted);
      for (int f = 0; f < fields.length; f++) {
        out[i * fields.length + f] = doc.get(fields[f]);
      }
    }
    return out;
  }

  /**
   * The UTF-8 values of a BINARY doc-values field, indexed by top-level doc
   * number (null where a document has none): the stored ids of a whole
   * reader in one call, to map doc numbers to ids without a call per hit.
   */
  public static String[] binary(IndexReader reader, String field) throws IOException {
    String[] out = new String[reader.maxDoc()];
    for (LeafReaderContext leaf : reader.leaves()) {
      BinaryDocValues values = DocValues.getBinary(leaf.reader(), field);
      for (int d = values.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = values.nextDoc()) {
        out[leaf.docBase + d] = values.binaryValue().utf8ToString();
      }
    }
    return out;
  }
}

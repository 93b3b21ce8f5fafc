package vqgram.lucene;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Set;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;

/**
 * A stored bytes field of many documents named by id, in one call: what a search reads of a page of hits
 * (their local words' positions) to verify them.
 *
 * <p>pyjnius pays a call per object and per field (a document, its BytesRef, its array, its length): 50
 * documents one by one cost milliseconds. Here the ids are looked up in the id field's terms and the
 * values come back as one byte[], which pyjnius converts in one call.
 */
public final class StoredBytes {
  private StoredBytes() {}

  /**
   * The stored {@code field} of the live document whose {@code idField} term is each of {@code ids}, as one
   * array: a big-endian int per id, the value's length (0 when the document has none, -1 when no live
   * document has that id), then the values, in the order of {@code ids}.
   */
  public static byte[] byId(IndexReader reader, String idField, String[] ids, String field) throws IOException {
    int[] docs = new int[ids.length];
    Arrays.fill(docs, -1);
    for (LeafReaderContext leaf : reader.leaves()) {
      LeafReader segment = leaf.reader();
      Terms terms = segment.terms(idField);
      if (terms == null) {
        continue;
      }
      TermsEnum termsEnum = terms.iterator();
      Bits live = segment.getLiveDocs();
      PostingsEnum postings = null;
      for (int i = 0; i < ids.length; i++) {
        if (docs[i] >= 0 || !termsEnum.seekExact(new BytesRef(ids[i]))) {
          continue;
        }
        postings = termsEnum.postings(postings, PostingsEnum.NONE);
        for (int d = postings.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = postings.nextDoc()) {
          if (live == null || live.get(d)) {
            docs[i] = leaf.docBase + d;
            break;
          }
        }
      }
    }
    StoredFields stored = reader.storedFields();
    Set<String> wanted = Set.of(field);
    byte[][] values = new byte[ids.length][];
    int size = 4 * ids.length;
    for (int i = 0; i < ids.length; i++) {
      if (docs[i] >= 0) {
        BytesRef value = stored.document(docs[i], wanted).getBinaryValue(field);
        values[i] = value == null ? new byte[0] : BytesRef.deepCopyOf(value).bytes;
        size += values[i].length;
      }
    }
    ByteBuffer out = ByteBuffer.allocate(size);
    for (byte[] value : values) {
      out.putInt(value == null ? -1 : value.length);
    }
    for (byte[] value : values) {
      if (value != null) {
        out.put(value);
      }
    }
    return out.array();
  }
}

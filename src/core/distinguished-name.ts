/**
 * Distinguished names as people read them: RFC 4514 text (RDNs last to first, `+` within
 * a multi-valued RDN, special characters escaped) and the attributes as a list. The one
 * place that turns a Name into text, for certificates, CSRs, CRLs and `dirName` SANs.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';

/** One attribute of a distinguished name, e.g. `{ type: 'CN', oid: '2.5.4.3', value: 'x' }`. */
export interface NameAttribute {
  type: string;
  oid: string;
  value: string;
}

/** A distinguished name as an RFC 4514 string, its attributes, and its DER for comparison. */
export interface DistinguishedName {
  rfc4514: string;
  attributes: NameAttribute[];
  /** DER of the Name; two names are equal when these bytes are equal (RFC 5280 §7.1 simplified). */
  der: Buffer;
}

/** Short names of attribute types (RFC 4514 §3 and common use); others print as the OID. */
const NAME_TYPES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '2.5.4.4': 'SN',
  '2.5.4.42': 'GN',
  '2.5.4.12': 'title',
  '2.5.4.17': 'postalCode',
  '2.5.4.97': 'organizationIdentifier',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

/** The short name of an attribute type, or its dotted OID. */
function attributeTypeName(oid: string): string {
  return NAME_TYPES[oid] ?? oid;
}

/** Describes a DER-encoded Name. Throws when it is not a Name. */
export function describeName(nameDer: Buffer): DistinguishedName {
  return describeDecodedName(AsnConvert.parse(nameDer, asn.Name), nameDer);
}

/** Describes a Name already decoded (a certificate's), whose DER is `nameDer`. */
export function describeDecodedName(name: asn.Name, nameDer: Buffer): DistinguishedName {
  const rdns = [...name].map((rdn) =>
    [...rdn].map((atv) => ({ oid: atv.type, value: atv.value.toString() })),
  );
  const attributes = rdns.flat().map((a) => ({ type: attributeTypeName(a.oid), ...a }));
  return { rfc4514: rfc4514Text(rdns), attributes, der: nameDer };
}

/** RFC 4514 text of a Name given as its RDNs in DER order, e.g. `CN=foo,O=Acme`. */
export function rfc4514Text(rdns: { oid: string; value: string }[][]): string {
  return [...rdns]
    .reverse()
    .map((rdn) => rdn.map((a) => `${attributeTypeName(a.oid)}=${escapeValue(a.value)}`).join('+'))
    .join(',');
}

/** Escapes an attribute value per RFC 4514 §2.4. */
function escapeValue(value: string): string {
  return value
    .replace(/[\\"+,;<>=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ')
    .replace(/\0/g, '\\00');
}

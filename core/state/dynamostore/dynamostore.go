// Package dynamostore is the state.Store on Amazon DynamoDB
// (ONBOARD_STORE=dynamodb:<table>), for the Lambda entry points.
//
// One table, string keys pk (partition) and sk (sort), TTL on the numeric
// attribute expires_at (epoch seconds). Items:
//
//	idempotency record  pk "idem#<key>"       sk "idem"
//	                    key, fingerprint, owner, completed (BOOL),
//	                    lease_until (N, epoch ms; in progress only),
//	                    result (B; completed only), expires_at (N)
//	versioned value     pk "value#<key>"      sk "value"
//	                    key, data (B), version (N), expires_at (N; ttl > 0 only)
//	audit record        pk "audit#2026-11-22" sk "<RFC 3339 UTC, ns>#<random>"
//	                    time, request_id, idempotency_key, trigger, target,
//	                    operation, person, person_lc, outcome, error
//	audit day index     pk "audit-days"       sk "2026-11-22"
//
// Keys longer than 1 KiB are stored under pk "idem-sha256#<hex>" (or
// "value-sha256#..."), a namespace plain keys cannot reach; the item's key
// attribute keeps the original.
//
// Every change is one conditional write, so no transaction (which costs
// double) is needed: Claim is a PutItem that succeeds only on an absent,
// expired or abandoned record, and on failure DynamoDB returns the item
// that made it fail (ReturnValuesOnConditionCheckFailure), which decides
// between in progress, completed and mismatch without a second read.
// Versions are compare-and-swap on the version attribute.
//
// Audit records are partitioned by UTC day so `onboard audit --since` reads
// only the days it asks for, with a Query rather than a Scan; the small day
// index lists which days exist, so a query without --since needs no Scan
// either. Filtering by person is a FilterExpression on person_lc: it saves
// transfer but not read capacity. A GSI on person_lc would save that too,
// but the audit CLI reads rarely, and the infrastructure template creates
// the table with exactly pk, sk and the TTL and nothing else.
//
// Expired items count as absent at once; DynamoDB's TTL deletes them later,
// typically within days, at no cost.
package dynamostore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/internal/rules"
)

// Attribute names shared with the infrastructure template.
const (
	AttrPartitionKey = "pk"
	AttrSortKey      = "sk"
	AttrExpiresAt    = "expires_at"
)

const (
	kindRecord = "idem"
	kindValue  = "value"
	auditDays  = "audit-days"
	// maxKeyBytes keeps pk well under DynamoDB's 2048-byte partition key limit.
	maxKeyBytes = 1024
	// maxRaces bounds retries when an item changes between a failed condition
	// and the read that explains it; each retry means another writer won.
	maxRaces = 5
)

// Options tune a Store; the zero value is the default.
type Options struct {
	// Now is the clock deciding leases and expiry; time.Now when nil.
	// Every condition compares against it rather than the server's clock,
	// so instances must keep reasonable time (Lambda's is NTP-synced).
	Now func() time.Time
}

// Store is a state.Store in one DynamoDB table.
type Store struct {
	client *dynamodb.Client
	table  string
	now    func() time.Time
	days   sync.Map // audit days this Store has written to the day index
}

var _ state.Store = (*Store)(nil)

// New returns a store on table, which must exist (see CreateTable).
func New(client *dynamodb.Client, table string) *Store {
	return NewOptions(client, table, Options{})
}

// NewOptions is New with options.
func NewOptions(client *dynamodb.Client, table string, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{client: client, table: table, now: opts.Now}
}

// ConfigLoader loads the AWS configuration of a store's client, given the
// store's settings. The loader is the caller's so that each binary links
// only the configuration chain it needs: the CLI config.LoadDefaultConfig
// (profiles, SSO), the Lambda its environment alone.
type ConfigLoader func(ctx context.Context, getenv func(string) string) (aws.Config, error)

// Backend returns the state.Backend for ONBOARD_STORE=dynamodb:<table>,
// its client configured by load. getenv's AWS_ENDPOINT_URL_DYNAMODB (moto,
// DynamoDB Local) wins over the endpoint load gives.
func Backend(load ConfigLoader) state.Backend {
	return func(ctx context.Context, table string, getenv func(string) string) (state.Store, error) {
		if table == "" {
			return nil, errors.New("dynamostore: no table named: want dynamodb:<table>")
		}
		cfg, err := load(ctx, getenv)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: loading AWS configuration: %w", err)
		}
		client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			if endpoint := getenv("AWS_ENDPOINT_URL_DYNAMODB"); endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
		})
		return New(client, table), nil
	}
}

// CreateTable creates table as the infrastructure template does (on-demand
// billing, pk/sk strings, TTL on expires_at) and waits until it is usable.
// It is for tests and the sandbox; an existing table is left as it is.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPartitionKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrSortKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPartitionKey), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSortKey), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamostore: creating table %s: %w", table, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 5*time.Minute); err != nil {
		return fmt.Errorf("dynamostore: waiting for table %s: %w", table, err)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("dynamostore: reading TTL of %s: %w", table, err)
	}
	// Enabling it twice is an error on AWS.
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == AttrExpiresAt &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrExpiresAt), Enabled: aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("dynamostore: enabling TTL on %s: %w", table, err)
	}
	return nil
}

// Close implements state.Store; the client holds nothing to release.
func (s *Store) Close() error { return nil }

// Claim implements state.Store.
func (s *Store) Claim(ctx context.Context, key, fingerprint, owner string, lease, ttl time.Duration) (state.ClaimOutcome, state.Record, error) {
	if err := rules.CheckClaim(key, owner, lease); err != nil {
		return 0, state.Record{}, err
	}
	for range maxRaces {
		now := s.now()
		_, rec := rules.Claim(nil, now, key, fingerprint, owner, lease, ttl)
		values := map[string]types.AttributeValue{
			":now_s": nowSeconds(now), ":now_ms": nowMillis(now), ":fingerprint": str(fingerprint), ":false": boolean(false),
		}
		item := recordItem(rec)
		token := rand.Text()
		item[claimTokenAttr] = str(token)
		_, err := s.write(ctx, &dynamodb.PutItemInput{
			Item: item,
			ConditionExpression: aws.String("attribute_not_exists(#pk) OR #expires_at <= :now_s OR " +
				"(#fingerprint = :fingerprint AND #completed = :false AND #lease_until <= :now_ms)"),
			ExpressionAttributeValues: values,
		})
		if err == nil {
			return state.Claimed, rec, nil
		}
		cur, err := s.explain(ctx, err, kindRecord, key)
		if err != nil {
			return 0, state.Record{}, fmt.Errorf("dynamostore: claim: %w", err)
		}
		rc, err := decodeRecord(key, cur)
		if err != nil {
			return 0, state.Record{}, err
		}
		if written, _ := cur[claimTokenAttr].(*types.AttributeValueMemberS); written != nil && written.Value == token {
			// This very write, landed: the SDK retried a request whose
			// answer was lost (a timeout, a reset).
			return state.Claimed, *rc, nil
		}
		if outcome, found := rules.Claim(rc, now, key, fingerprint, owner, lease, ttl); outcome != state.Claimed {
			return outcome, found, nil
		}
	}
	return 0, state.Record{}, fmt.Errorf("dynamostore: claim of %q lost %d races in a row", key, maxRaces)
}

// claimTokenAttr holds a random token per claim write, so that a claim
// that finds its own write (the SDK retried a request whose answer was
// lost) knows it, where a redelivery reusing the owner does not.
const claimTokenAttr = "claim_token"

// Complete implements state.Store.
func (s *Store) Complete(ctx context.Context, key, owner string, result []byte, ttl time.Duration) error {
	if err := rules.CheckKey(key); err != nil {
		return err
	}
	for range maxRaces {
		now := s.now()
		values := map[string]types.AttributeValue{
			":owner": str(owner), ":true": boolean(true), ":false": boolean(false), ":now_s": nowSeconds(now),
		}
		set := []string{"#completed = :true"}
		remove := []string{"#lease_until"}
		if len(result) > 0 {
			set = append(set, "#result = :result")
			values[":result"] = &types.AttributeValueMemberB{Value: result}
		}
		if exp := rules.Expiry(now, ttl); exp.IsZero() {
			remove = append(remove, "#expires_at")
		} else {
			set = append(set, "#expires_at = :expires_at")
			values[":expires_at"] = epochSeconds(exp)
		}
		_, err := s.write(ctx, &dynamodb.UpdateItemInput{
			Key:                       itemKey(kindRecord, key),
			UpdateExpression:          updateExpression(set, remove),
			ConditionExpression:       aws.String("#owner = :owner AND #completed = :false AND (attribute_not_exists(#expires_at) OR #expires_at > :now_s)"),
			ExpressionAttributeValues: values,
		})
		if err == nil {
			return nil
		}
		cur, err := s.explain(ctx, err, kindRecord, key)
		if err != nil {
			return fmt.Errorf("dynamostore: complete: %w", err)
		}
		rc, err := decodeRecord(key, cur)
		if err != nil {
			return err
		}
		if _, write, err := rules.Complete(rc, now, owner, result, ttl); err != nil || !write {
			return err
		}
	}
	return fmt.Errorf("dynamostore: complete of %q lost %d races in a row", key, maxRaces)
}

// Renew implements state.Store. The first write only moves lease_until,
// on condition that the record is owner's, in progress, live, and expires
// no earlier than the new lease (records normally outlive their lease by
// far). When that condition fails on a record owner does hold, its expiry
// came first: the next write moves both, on condition that the expiry is
// still the one it read, so no other writer's change is overwritten.
func (s *Store) Renew(ctx context.Context, key, owner string, lease time.Duration) error {
	if err := rules.CheckClaim(key, owner, lease); err != nil {
		return err
	}
	var seen *state.Record // the record a failed condition showed
	for range maxRaces {
		now := s.now()
		leaseUntil := now.Add(lease)
		values := map[string]types.AttributeValue{
			":owner": str(owner), ":false": boolean(false), ":now_s": nowSeconds(now), ":lease_until": epochMillis(leaseUntil),
		}
		set := []string{"#lease_until = :lease_until"}
		cond := "#owner = :owner AND #completed = :false AND (attribute_not_exists(#expires_at) OR #expires_at > :now_s)"
		if seen != nil && !seen.ExpiresAt.IsZero() && seen.ExpiresAt.Before(leaseUntil) {
			set = append(set, "#expires_at = :lease_end_s")
			cond += " AND #expires_at = :seen_expires_at"
			values[":seen_expires_at"] = epochSeconds(seen.ExpiresAt)
		} else {
			cond += " AND (attribute_not_exists(#expires_at) OR #expires_at >= :lease_end_s)"
		}
		values[":lease_end_s"] = epochSeconds(leaseUntil)
		_, err := s.write(ctx, &dynamodb.UpdateItemInput{
			Key:                       itemKey(kindRecord, key),
			UpdateExpression:          updateExpression(set, nil),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeValues: values,
		})
		if err == nil {
			return nil
		}
		cur, err := s.explain(ctx, err, kindRecord, key)
		if err != nil {
			return fmt.Errorf("dynamostore: renew: %w", err)
		}
		if seen, err = decodeRecord(key, cur); err != nil {
			return err
		}
		if _, err := rules.Renew(seen, now, owner, lease); err != nil {
			return err
		}
	}
	return fmt.Errorf("dynamostore: renew of %q lost %d races in a row", key, maxRaces)
}

// Release implements state.Store.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if err := rules.CheckKey(key); err != nil {
		return err
	}
	_, err := s.write(ctx, &dynamodb.DeleteItemInput{
		Key:                       itemKey(kindRecord, key),
		ConditionExpression:       aws.String("#owner = :owner AND #completed = :false"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(owner), ":false": boolean(false)},
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("dynamostore: release: %w", err)
	}
	return nil
}

// Get implements state.Store.
func (s *Store) Get(ctx context.Context, key string) (state.Value, error) {
	if err := rules.CheckKey(key); err != nil {
		return state.Value{}, err
	}
	item, err := s.read(ctx, kindValue, key)
	if err != nil {
		return state.Value{}, fmt.Errorf("dynamostore: get: %w", err)
	}
	v, err := decodeValue(key, item)
	if err != nil {
		return state.Value{}, err
	}
	if v == nil || rules.Expired(v.ExpiresAt, s.now()) {
		return state.Value{}, state.ErrNotFound
	}
	return state.Value{Data: v.Data, Version: v.Version}, nil
}

// Put implements state.Store. The version continues from an expired item's
// (if_not_exists), as rules.Put requires.
func (s *Store) Put(ctx context.Context, key string, data []byte, expectVersion int64, ttl time.Duration) (int64, error) {
	if err := rules.CheckKey(key); err != nil {
		return 0, err
	}
	if err := rules.CheckVersion(expectVersion); err != nil {
		return 0, err
	}
	now := s.now()
	values := map[string]types.AttributeValue{
		":key": str(key), ":zero": number(0), ":one": number(1), ":now_s": nowSeconds(now),
	}
	set := []string{"#key = :key", "#version = if_not_exists(#version, :zero) + :one"}
	var remove []string
	// Empty data is stored as no attribute: moto (unlike DynamoDB) fails on
	// empty binary values.
	if len(data) > 0 {
		set = append(set, "#data = :data")
		values[":data"] = &types.AttributeValueMemberB{Value: data}
	} else {
		remove = append(remove, "#data")
	}
	if exp := rules.Expiry(now, ttl); exp.IsZero() {
		remove = append(remove, "#expires_at")
	} else {
		set = append(set, "#expires_at = :expires_at")
		values[":expires_at"] = epochSeconds(exp)
	}
	token := rand.Text()
	set = append(set, "#put_token = :put_token")
	values[":put_token"] = str(token)
	cond := "attribute_not_exists(#pk) OR #expires_at <= :now_s"
	if expectVersion > 0 {
		cond = "#version = :expect AND (attribute_not_exists(#expires_at) OR #expires_at > :now_s)"
		values[":expect"] = number(expectVersion)
	}
	in := &dynamodb.UpdateItemInput{
		Key:                       itemKey(kindValue, key),
		UpdateExpression:          updateExpression(set, remove),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueUpdatedNew,
	}
	updated, err := s.write(ctx, in)
	if err == nil {
		return getN(updated, "version")
	}
	cur, err := s.explain(ctx, err, kindValue, key)
	if err != nil {
		return 0, fmt.Errorf("dynamostore: put: %w", err)
	}
	if written, _ := cur[putTokenAttr].(*types.AttributeValueMemberS); written != nil && written.Value == token {
		return getN(cur, "version")
	}
	return 0, state.ErrConflict
}

// putTokenAttr holds a random token per Put, so that a Put whose condition
// fails on its own write (the SDK retried a request whose answer was lost)
// knows it did write, and which version.
const putTokenAttr = "put_token"

// Append implements state.Store. A day's index item is written before the
// first record of that day (once per Store), so a reader listing the days
// never misses a record.
func (s *Store) Append(ctx context.Context, recs ...state.AuditRecord) error {
	now := s.now()
	var items []map[string]types.AttributeValue
	newDays := map[string]bool{}
	for _, rec := range recs {
		rec = rules.Stamp(rec, now)
		day := rules.AuditDay(rec.Time)
		if _, known := s.days.Load(day); !known && !newDays[day] {
			// The day index goes in the same batch: putting it again is harmless.
			newDays[day] = true
			items = append(items, map[string]types.AttributeValue{AttrPartitionKey: str(auditDays), AttrSortKey: str(day)})
		}
		item := map[string]types.AttributeValue{
			AttrPartitionKey: str("audit#" + day),
			AttrSortKey:      str(rules.AuditKey(rec.Time, rand.Text())),
			"time":           str(rec.Time.UTC().Format(time.RFC3339Nano)),
		}
		for name, v := range auditFields(&rec) {
			if *v != "" {
				item[name] = str(*v)
			}
		}
		if rec.Person != "" {
			item["person_lc"] = str(rules.PersonKey(rec.Person))
		}
		items = append(items, item)
	}
	if err := s.batchPut(ctx, items); err != nil {
		return fmt.Errorf("dynamostore: append: %w", err)
	}
	for day := range newDays {
		s.days.Store(day, struct{}{})
	}
	return nil
}

// batchPut writes items with BatchWriteItem, 25 a call, sending again
// what DynamoDB leaves unprocessed (it may, under throttling) after a
// short, growing wait.
func (s *Store) batchPut(ctx context.Context, items []map[string]types.AttributeValue) error {
	for start := 0; start < len(items); start += maxBatchWrite {
		var requests []types.WriteRequest
		for _, item := range items[start:min(start+maxBatchWrite, len(items))] {
			requests = append(requests, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		}
		for attempt := 0; len(requests) > 0; attempt++ {
			if attempt == maxBatchAttempts {
				return fmt.Errorf("%d audit records left unprocessed after %d attempts", len(requests), attempt)
			}
			if attempt > 0 {
				if err := httpretry.Sleep(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
					return err
				}
			}
			out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.table: requests},
			})
			if err != nil {
				return err
			}
			requests = out.UnprocessedItems[s.table]
		}
	}
	return nil
}

const (
	maxBatchWrite    = 25 // BatchWriteItem's limit
	maxBatchAttempts = 5
)

// auditFields names the string fields of an audit record, for encoding and
// decoding alike.
func auditFields(r *state.AuditRecord) map[string]*string {
	return map[string]*string{
		"request_id": &r.RequestID, "idempotency_key": &r.IdempotencyKey, "trigger": &r.Trigger,
		"target": &r.Target, "operation": &r.Operation, "resource": &r.Resource, "person": &r.Person, "outcome": &r.Outcome, "error": &r.Error,
	}
}

// Audit implements state.Store.
func (s *Store) Audit(ctx context.Context, q state.AuditQuery) ([]state.AuditRecord, error) {
	fromDay := ""
	if !q.Since.IsZero() {
		fromDay = rules.AuditDay(q.Since)
	}
	var days []string
	err := s.query(ctx, auditDays, fromDay, "", 0, func(item map[string]types.AttributeValue) bool {
		days = append(days, getS(item, AttrSortKey))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("dynamostore: audit days: %w", err)
	}
	var out []state.AuditRecord
	for _, day := range days {
		var pageSize int32
		if q.Person == "" && q.Limit > 0 {
			pageSize = int32(q.Limit - len(out))
		}
		var decodeErr error
		err := s.query(ctx, "audit#"+day, rules.AuditSince(q.Since), rules.PersonKey(q.Person), pageSize, func(item map[string]types.AttributeValue) bool {
			rec, err := decodeAudit(item)
			if err != nil {
				decodeErr = err
				return false
			}
			if rules.Matches(rec, q) {
				out = append(out, rec)
			}
			return q.Limit <= 0 || len(out) < q.Limit
		})
		if err = errors.Join(err, decodeErr); err != nil {
			return nil, fmt.Errorf("dynamostore: audit: %w", err)
		}
		if q.Limit > 0 && len(out) >= q.Limit {
			break
		}
	}
	return out, nil
}

// query reads partition pk in sort key order from fromSK ("": all of it),
// keeping items whose person_lc is person ("": all), and calls each until
// it returns false.
func (s *Store) query(ctx context.Context, pk, fromSK, person string, pageSize int32, each func(map[string]types.AttributeValue) bool) error {
	keyCond := "#pk = :pk"
	values := map[string]types.AttributeValue{":pk": str(pk)}
	if fromSK != "" {
		keyCond += " AND #sk >= :from"
		values[":from"] = str(fromSK)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String(keyCond),
		ExpressionAttributeValues: values,
		ConsistentRead:            aws.Bool(true),
	}
	if person != "" {
		in.FilterExpression = aws.String("#person_lc = :person")
		values[":person"] = str(person)
	}
	if pageSize > 0 {
		in.Limit = aws.Int32(pageSize)
	}
	in.ExpressionAttributeNames = placeholders(keyCond, aws.ToString(in.FilterExpression))
	pages := dynamodb.NewQueryPaginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, item := range page.Items {
			if !each(item) {
				return nil
			}
		}
	}
	return nil
}

// write sends a PutItem, UpdateItem or DeleteItem on the store's table with
// the expression attribute names its expressions use, asking for the
// current item when a condition fails, and returns the attributes an
// UpdateItem sends back.
func (s *Store) write(ctx context.Context, in any) (attrs map[string]types.AttributeValue, err error) {
	const allOld = types.ReturnValuesOnConditionCheckFailureAllOld
	switch in := in.(type) {
	case *dynamodb.PutItemInput:
		in.TableName = aws.String(s.table)
		in.ExpressionAttributeNames = placeholders(aws.ToString(in.ConditionExpression))
		if in.ConditionExpression != nil {
			in.ReturnValuesOnConditionCheckFailure = allOld
		}
		_, err = s.client.PutItem(ctx, in)
	case *dynamodb.UpdateItemInput:
		in.TableName = aws.String(s.table)
		in.ExpressionAttributeNames = placeholders(aws.ToString(in.UpdateExpression), aws.ToString(in.ConditionExpression))
		in.ReturnValuesOnConditionCheckFailure = allOld
		var res *dynamodb.UpdateItemOutput
		if res, err = s.client.UpdateItem(ctx, in); err == nil {
			attrs = res.Attributes
		}
	case *dynamodb.DeleteItemInput:
		in.TableName = aws.String(s.table)
		in.ExpressionAttributeNames = placeholders(aws.ToString(in.ConditionExpression))
		_, err = s.client.DeleteItem(ctx, in)
	default:
		panic(fmt.Sprintf("dynamostore: write of %T", in))
	}
	return attrs, err
}

// explain returns the item that made a condition fail: the one DynamoDB
// sent back, or a fresh read where it sent none (an item that did not
// exist, or an emulator without ReturnValuesOnConditionCheckFailure).
// Other errors are returned as they are.
func (s *Store) explain(ctx context.Context, err error, kind, key string) (map[string]types.AttributeValue, error) {
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		return nil, err
	}
	if failed.Item != nil {
		return failed.Item, nil
	}
	return s.read(ctx, kind, key)
}

func (s *Store) read(ctx context.Context, kind, key string) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: itemKey(kind, key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func updateExpression(set, remove []string) *string {
	e := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		e += " REMOVE " + strings.Join(remove, ", ")
	}
	return aws.String(e)
}

// placeholderRE finds #name placeholders; each stands for the attribute of
// the same name, which sidesteps DynamoDB's reserved words (owner, key,
// data, ...) while keeping expressions readable.
var placeholderRE = regexp.MustCompile(`#[a-z_]+`)

// placeholders maps exactly the placeholders used: DynamoDB refuses unused ones.
func placeholders(exprs ...string) map[string]string {
	names := map[string]string{}
	for _, e := range exprs {
		for _, p := range placeholderRE.FindAllString(e, -1) {
			names[p] = p[1:]
		}
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

func itemKey(kind, key string) map[string]types.AttributeValue {
	pk := kind + "#" + key
	if len(key) > maxKeyBytes {
		pk = kind + "-sha256#" + rules.Digest(key)
	}
	return map[string]types.AttributeValue{AttrPartitionKey: str(pk), AttrSortKey: str(kind)}
}

func recordItem(rec state.Record) map[string]types.AttributeValue {
	item := itemKey(kindRecord, rec.Key)
	item["key"] = str(rec.Key)
	item["fingerprint"] = str(rec.Fingerprint)
	item["owner"] = str(rec.Owner)
	item["completed"] = boolean(rec.Completed)
	if !rec.LeaseUntil.IsZero() {
		item["lease_until"] = epochMillis(rec.LeaseUntil)
	}
	if len(rec.Result) > 0 {
		item["result"] = &types.AttributeValueMemberB{Value: rec.Result}
	}
	if !rec.ExpiresAt.IsZero() {
		item[AttrExpiresAt] = epochSeconds(rec.ExpiresAt)
	}
	return item
}

func decodeRecord(key string, item map[string]types.AttributeValue) (*state.Record, error) {
	if item == nil {
		return nil, nil
	}
	rec := &state.Record{Key: key, Fingerprint: getS(item, "fingerprint"), Owner: getS(item, "owner")}
	if v, ok := item["completed"].(*types.AttributeValueMemberBOOL); ok {
		rec.Completed = v.Value
	}
	if v, ok := item["result"].(*types.AttributeValueMemberB); ok {
		rec.Result = v.Value
	}
	var err error
	if rec.LeaseUntil, err = getTime(item, "lease_until", time.UnixMilli); err != nil {
		return nil, err
	}
	if rec.ExpiresAt, err = getTime(item, AttrExpiresAt, unixSeconds); err != nil {
		return nil, err
	}
	return rec, nil
}

func decodeValue(key string, item map[string]types.AttributeValue) (*rules.Stored, error) {
	if item == nil {
		return nil, nil
	}
	v := &rules.Stored{}
	if b, ok := item["data"].(*types.AttributeValueMemberB); ok {
		v.Data = b.Value
	}
	var err error
	if v.Version, err = getN(item, "version"); err != nil {
		return nil, fmt.Errorf("dynamostore: value %q: %w", key, err)
	}
	if v.ExpiresAt, err = getTime(item, AttrExpiresAt, unixSeconds); err != nil {
		return nil, err
	}
	return v, nil
}

func decodeAudit(item map[string]types.AttributeValue) (state.AuditRecord, error) {
	var rec state.AuditRecord
	for name, v := range auditFields(&rec) {
		*v = getS(item, name)
	}
	t, err := time.Parse(time.RFC3339Nano, getS(item, "time"))
	if err != nil {
		return rec, fmt.Errorf("dynamostore: audit item %s: %w", getS(item, AttrSortKey), err)
	}
	rec.Time = t
	return rec, nil
}

func str(v string) types.AttributeValue   { return &types.AttributeValueMemberS{Value: v} }
func boolean(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }
func number(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// epochSeconds rounds up: an item expires no earlier than asked.
func epochSeconds(t time.Time) types.AttributeValue {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return number(s)
}

// epochMillis rounds up: a lease ends no earlier than granted.
func epochMillis(t time.Time) types.AttributeValue {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) > 0 {
		ms++
	}
	return number(ms)
}

// nowSeconds and nowMillis round down, so that with the deadlines rounded
// up, "deadline <= now" in a condition holds exactly when rules.Expired
// holds for the decoded deadline: the condition and the decision that
// explains its failure never disagree.
func nowSeconds(now time.Time) types.AttributeValue { return number(now.Unix()) }
func nowMillis(now time.Time) types.AttributeValue  { return number(now.UnixMilli()) }

func unixSeconds(s int64) time.Time { return time.Unix(s, 0) }

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("dynamostore: attribute %s missing or not a number", name)
	}
	return strconv.ParseInt(v.Value, 10, 64)
}

// getTime reads an optional epoch-number attribute; absent is the zero time.
func getTime(item map[string]types.AttributeValue, name string, fromEpoch func(int64) time.Time) (time.Time, error) {
	if _, ok := item[name]; !ok {
		return time.Time{}, nil
	}
	n, err := getN(item, name)
	if err != nil {
		return time.Time{}, err
	}
	return fromEpoch(n), nil
}

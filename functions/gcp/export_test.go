package gcp

import cloudevents "github.com/cloudevents/sdk-go/v2"

// DecodeMessagePublished is what ProvisionPubSub makes of an event before
// the engine sees it: the message's data, attributes and id.
func DecodeMessagePublished(e cloudevents.Event) (data []byte, attributes map[string]string, id string, err error) {
	env, err := decodeMessagePublished(e)
	if err != nil {
		return nil, nil, "", err
	}
	return env.Message.Data, env.Message.Attributes, env.Message.ID, nil
}
